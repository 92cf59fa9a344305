"""Code generators and runtimes, one subpackage per target."""
