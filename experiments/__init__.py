"""Experiments: studies built on the product, not part of it. Each subpackage reproduces or probes a result
(of the LLaDA paper, or of a choice of ours) with the project's model, losses and samplers, has its own entry
point (`python -m experiments.<name>`) and writes only under its output_dir; nothing in the product imports
them (they sit above trainer/ in the layers of tests/test_layers.py).
"""
