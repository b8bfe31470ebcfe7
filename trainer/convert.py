"""Convert between our checkpoint folder (model.pt + model_config.json) and LLaDA's Hugging Face layout.

    python -m trainer.convert direction=to_hf input=out/sft output=out/sft-hf tokenizer_dir=out/tokenizer
    python -m trainer.convert direction=from_hf input=LLaDA-8B-Base output=out/llada-8b dtype=bfloat16

to_hf writes config.json (LLaDA's format) and safetensors weights (trainer/hf/export.py), the tokenizer in
Hugging Face form when tokenizer_dir is given (tokenizer/hf_export.py: ours converted, a Hugging Face one
copied), so `transformers.AutoTokenizer.from_pretrained(output)` loads it, plus this job's config as
convert_config.json; from_hf writes model.pt, model_config.json and config.json, the files
trainer.checkpoint.load_model reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, one_of, save_config, to_dict
from formats.checkpoint import WEIGHTS
from formats.layout import folder
from trainer.hf.export import DEFAULT_MAX_SHARD_BYTES

DIRECTIONS = ("to_hf", "from_hf")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LLADA_CODE_FILES = ("configuration_llada.py", "modeling_llada.py")


@dataclass(kw_only=True)
class ConvertConfig:
    """Convert a checkpoint between our folder layout and LLaDA's Hugging Face layout."""

    direction: str = one_of("to_hf", DIRECTIONS)
    """to_hf: our checkpoint folder -> Hugging Face LLaDA folder; from_hf: the reverse."""
    input: str = folder("sft")
    """Folder to read: ours (model.pt + model_config.json) for to_hf, a Hugging Face LLaDA folder for from_hf."""
    output: str = folder("sft") + "-hf"
    """Folder to write (created; must differ from input)."""
    dtype: str = one_of("auto", DTYPES)
    """Weights dtype written: auto (as stored in the input), float32, bfloat16 or float16."""
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    """to_hf: largest safetensors file; bigger models are split into shards plus model.safetensors.index.json."""
    tokenizer_dir: str | None = None
    """to_hf: the tokenizer folder the model was trained with (ours or a Hugging Face one): written beside the
    weights in Hugging Face form (tokenizer.json, tokenizer_config.json with the chat template), and its
    mask, EOS, pad and BOS ids and vocab size go into config.json."""
    llada_code_dir: str | None = None
    """to_hf: a folder with LLaDA's configuration_llada.py and modeling_llada.py (e.g. a downloaded
    GSAI-ML/LLaDA-8B-Base); they are copied beside the weights so transformers can load the folder with
    trust_remote_code=True."""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.max_shard_bytes < 1:
            raise ConfigError(f"max_shard_bytes must be at least 1, got {self.max_shard_bytes}")
        if self.direction == "from_hf" and (self.tokenizer_dir or self.llada_code_dir):
            raise ConfigError("tokenizer_dir and llada_code_dir apply to direction=to_hf only")
        if Path(self.input).expanduser().resolve() == Path(self.output).expanduser().resolve():
            raise ConfigError(f"output must differ from input ({self.input}): both folders hold a config.json")


def main(config: ConvertConfig) -> dict:
    from common.paths import require_paths

    require_paths([config.input], "checkpoint")
    if config.direction == "to_hf":
        return to_hf(config)
    return from_hf(config)


def to_hf(config: ConvertConfig) -> dict:
    import shutil

    import torch

    from trainer.checkpoint import load_model
    from trainer.hf.export import export_hf_checkpoint

    source, output = Path(config.input), Path(config.output)
    code_files = []
    if config.llada_code_dir:
        code_files = [Path(config.llada_code_dir) / name for name in LLADA_CODE_FILES]
        missing = [str(path) for path in code_files if not path.is_file()]
        if missing:
            raise ConfigError(f"llada_code_dir lacks {', '.join(missing)}")
    extra = tokenizer_fields(config.tokenizer_dir) if config.tokenizer_dir else {}
    if config.dtype == "auto":
        # mmap: only the first tensor's header is read; the training job saves every tensor in one dtype.
        state = torch.load(source / WEIGHTS, map_location="cpu", weights_only=True, mmap=True)
        dtype = next(iter(state.values())).dtype
        del state
    else:
        dtype = getattr(torch, config.dtype)
    model = load_model(source, dtype=dtype)
    files = export_hf_checkpoint(model, output, max_shard_bytes=config.max_shard_bytes, extra_config=extra)
    for path in code_files:
        shutil.copyfile(path, output / path.name)
    if config.tokenizer_dir:
        from tokenizer.hf_export import write_hf_tokenizer

        files += write_hf_tokenizer(config.tokenizer_dir, output)
    save_config(config, output / "convert_config.json")
    print(f"[convert] {source} -> {output}: {len(files)} files, {model.num_params():,} parameters, {dtype}", flush=True)
    return {"output": str(output), "files": [p.name for p in files], "dtype": str(dtype), "config": to_dict(config)}


def from_hf(config: ConvertConfig) -> dict:
    import dataclasses

    import torch

    from trainer.checkpoint import save_model
    from trainer.hf.config import read_hf_config
    from trainer.hf.load import load_hf_checkpoint

    source, output = Path(config.input), Path(config.output)
    info = read_hf_config(source)
    model = load_hf_checkpoint(source, dtype=None if config.dtype == "auto" else getattr(torch, config.dtype))
    save_config(config, output / "config.json")
    save_model(model, output)  # complete.json last: the folder is whole
    dtype = model.transformer.wte.weight.dtype
    print(f"[convert] {source} -> {output}: {model.num_params():,} parameters in {dtype}", flush=True)
    return {
        "output": str(output),
        "model_config": dataclasses.asdict(model.config),
        "tokenizer_vocab_size": info.vocab_size,
        "special_token_ids": info.special_token_ids,
        "dtype": str(dtype),
        "config": to_dict(config),
    }


def tokenizer_fields(tokenizer_dir: str) -> dict:
    """config.json fields from our tokenizer: LLaDA's mask/eos/pad ids (plus BOS) and the vocabulary size."""
    from tokenizer.encode import Tokenizer

    tokenizer = Tokenizer.load(tokenizer_dir)
    ids = tokenizer.special_tokens
    return {
        "mask_token_id": ids["mask"],
        "eos_token_id": ids["eos"],
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "vocab_size": tokenizer.vocab_size,
    }


if __name__ == "__main__":
    raise SystemExit(run_job(ConvertConfig, main, description=__doc__.splitlines()[0]))
