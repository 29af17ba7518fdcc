"""ROS 2 nodes: thin glue over the pure modules (world, perception, tactile, selection,
store, learning)."""
