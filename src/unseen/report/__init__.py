"""Tables and plots from run records."""
