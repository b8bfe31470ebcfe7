"""The whole experiment: both models trained and evaluated, the results table, and the files of a run."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from common.config import save_config, to_dict
from common.files import write_json
from experiments.reversal.config import ReversalConfig
from experiments.reversal.data import BOS_ID, EOS_ID, MASK_ID, PAD_ID, VOCAB, decode, fact_tensor, make_pairs
from experiments.reversal.train import LOG, train_and_evaluate
from trainer.checkpoint import save_model


def run(config: ReversalConfig, *, log=print) -> dict:
    """Both models, trained and evaluated; nothing written to disk: {"rows": [...], models}."""
    pairs = make_pairs(config.num_pairs, config.seed)
    facts = fact_tensor(pairs, config.canvas_length)
    log(f"{LOG} {len(pairs)} facts, e.g. {decode(facts[0].tolist())!r}; vocabulary {len(VOCAB)} tokens")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        diffusion, diffusion_rows = train_and_evaluate(config, facts, causal=False, log=log)
        autoregressive, autoregressive_rows = train_and_evaluate(config, facts, causal=True, log=log)
    finally:  # the caller's setting (a test session, a benchmark) is not ours to change
        torch.set_num_threads(threads)
    return {"rows": diffusion_rows + autoregressive_rows, "diffusion": diffusion, "autoregressive": autoregressive}


def results_table(rows: list[dict]) -> str:
    """Markdown table in the manner of the paper's table 4 (accuracy in %)."""
    lines = [
        "| model | steps | tokens | train s | forward % | reverse % | reverse by ranking % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ranking = f"{100 * r['reverse_by_ranking']:.1f}" if "reverse_by_ranking" in r else "-"
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['tokens']} | {r['train_seconds']:.1f} | "
            f"{100 * r['forward']:.1f} | {100 * r['reverse']:.1f} | {ranking} |"
        )
    return "\n".join(lines)


def main(config: ReversalConfig) -> dict:
    """Run the experiment into config.output_dir, unless results.json there is complete for this config."""
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    if results_path.is_file():  # completion marker: written last
        previous = json.loads(results_path.read_text())
        if previous.get("config") == to_dict(config):
            print(f"{LOG} {results_path} is complete for this config; delete it to rerun", flush=True)
            print(results_table(previous["rows"]), flush=True)
            return previous
    outcome = run(config, log=lambda line: print(line, flush=True))
    save_config(config, output / "config.json")
    vocab = {"tokens": VOCAB, "pad": PAD_ID, "mask": MASK_ID, "bos": BOS_ID, "eos": EOS_ID}
    write_json(output / "vocab.json", vocab, sort_keys=True)
    save_model(outcome["diffusion"], output / "diffusion")
    save_model(outcome["autoregressive"], output / "autoregressive")
    result = {"config": to_dict(config), "rows": outcome["rows"]}
    write_json(results_path, result, sort_keys=True)
    print(results_table(outcome["rows"]), flush=True)
    return result
