"""Neural-network building blocks shared by method families."""
