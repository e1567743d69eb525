"""End-to-end methods for unseen classes in unseen domains (protocol ``gzsl-dg-v1``): one network
trained on the seen classes of the training domains that scores every class, seen or unseen, by
its compatibility with the class semantics. Each module registers its method in
:data:`unseen.methods.JOINT`, which imports this package at its first lookup."""
