"""Looking inside and steering a running VM: snapshots (`snapshot`)."""
