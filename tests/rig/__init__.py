"""The local rig: systemd-nspawn Debian 12 nodes on an emulated VPC that run steps/ for real (see README.md)."""
