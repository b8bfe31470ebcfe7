"""The contracts between stages: the folders one stage writes and the next one reads.

    layout.py        the folder names of a build (corpus/, corpus_fuzzy/, tokenizer/, tokens/, ...) and
                     which job reads and writes which: the DAGs, the configs' defaults and the chaining
    corpus.py        a corpus folder: documents/shard-NNNNN.parquet and manifest.json
    token_shards.py  a token-shard folder: tokens-NNNNN.arrow files and manifest.json, writer and reader
    checkpoint.py    a checkpoint folder: model.pt, model_config.json, config.json, train_metrics.json, run.json

The tokenizer folder (ours: tokenizer.model + special_tokens.json; or a Hugging Face tokenizer.json folder)
is the one contract kept with its code, in tokenizer/encode.py (`Tokenizer.load`, and each implementation's
`save`): the tokenizer package sits right above formats/ and below every stage that reads it.

Writer and reader import the same module, so a format changes in one place. Nothing here imports a
stage (tests/test_layers.py keeps it so).
"""
