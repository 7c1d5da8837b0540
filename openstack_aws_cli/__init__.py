"""`openstack-aws`: the operator's view of installs and rebuilds (status, run, rebuild, logs, endpoints, watch)."""
