"""Audio, features, alignments, chunking, tokenisation and batching."""
