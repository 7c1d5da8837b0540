"""An emulated EC2 instance metadata service (IMDSv2), shared by the rig's nodes and the QEMU boot proof."""
