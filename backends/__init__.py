"""Code generators and runtimes for each target framework."""
