"""robot_bridge package."""
