"""The vocabulary the models share: the shipped sentencepiece model's pieces and the blank.

Data owns these numbers (the tokenizer defines them); the model sizes its output from them
(`model.config`) and the CTC loss is told the blank id.
"""

VOCAB_SIZE = 4095  # sentencepiece pieces; the model has VOCAB_SIZE + 1 classes.
BLANK_ID = VOCAB_SIZE  # CTC blank is the last class (4095).
