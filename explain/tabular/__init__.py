"""The tabular family: tree (exact, with its fast kernels), linear (exact), and the sampled
black-box methods permutation, kernel and partition. Rows arrive checked, as float arrays."""
