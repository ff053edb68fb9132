"""How RECIPES["mlp"] was chosen: variants of it trained on 55,000 images, scored on validation.

Each variant is the recipe with some fields replaced; it trains on the training part of
``fc.train_val_split`` and reports the accuracy on the 5,000 validation images, never the test
set. Run with the canonical thread count, for example::

    FASHION_COURSE_THREADS=2 python scripts/tune_mlp.py \\
        "epochs=10" "epochs=15" "epochs=15,augment=True,max_shift=0" --seeds 0 1

Times are relative: the first variant's training seconds are the unit. ``--bfloat16`` trains a
CNN as ``python -m fashion_course bench`` does on a CPU with AMX (or a CUDA GPU): under bfloat16
autocast, scored under it too. On a machine shared with
other jobs, also set ``OMP_WAIT_POLICY=PASSIVE``: waiting threads then sleep instead of spinning,
which gives the same numbers many times faster when the cores are oversubscribed.
"""

from __future__ import annotations

import argparse
import ast
import re
import time
from dataclasses import replace

import fashion_course as fc
from fashion_course.bench import train_timed
from fashion_course.data import load_tensors


def parse(variant: str) -> dict:
    """``"epochs=15,channels=(16,64,96)"`` -> ``{"epochs": 15, "channels": (16, 64, 96)}``."""
    fields = {}
    for item in filter(None, re.split(r",(?![^(]*\))", variant)):  # commas outside parentheses
        key, _, value = item.partition("=")
        fields[key.strip()] = ast.literal_eval(value.strip())
    return fields


def _validation_tensors():
    """(train images, labels, validation images, labels): the split ``train_recipe`` validates on."""
    images, labels = load_tensors(True)
    train, val = fc.validation_indices(len(labels))
    return images[train], labels[train], images[val], labels[val]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help='fields to change, e.g. "epochs=15,weight_decay=0.05"')
    parser.add_argument("--base", default="mlp", help="the recipe the variants start from")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bfloat16", action="store_true",
                        help="train under bfloat16 autocast, the benchmark's path on an AMX CPU or a GPU")
    args = parser.parse_args()
    fc.seed_everything(0)  # fixes the thread count from FASHION_COURSE_THREADS
    split = _validation_tensors() if args.bfloat16 else None
    device = fc.choose_device()
    unit = None
    for variant in args.variants:
        recipe = replace(fc.RECIPES[args.base], **parse(variant))
        accuracies, seconds = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            if split is None:
                _, history = fc.train_recipe(recipe, seed=seed, validation=True)
                accuracies.append(history.test_accuracy[-1])
            else:
                _, rows, _ = train_timed(recipe, device=device, data=split, seed=seed, fast=True)
                accuracies.append(rows[-1]["test_accuracy"])
            seconds.append(time.perf_counter() - start)
        mean_s = sum(seconds) / len(seconds)
        unit = unit or mean_s
        scores = " ".join(f"{a:.2%}" for a in accuracies)
        print(f"{variant:50s} validation {scores}  mean {sum(accuracies) / len(accuracies):.2%}  "
              f"time x{mean_s / unit:.2f}", flush=True)


if __name__ == "__main__":
    main()
