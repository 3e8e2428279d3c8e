"""The text family: Partition over words (`text`), integrated gradients, the batched forward
pass they share, word layout and windows for long texts, and the evaluation budget."""
