"""How RECIPES["mlp"] was chosen: variants of it trained on 55,000 images, scored on validation.

Each variant is the recipe with some fields replaced; it trains on the training part of
``fc.train_val_split`` and reports the accuracy on the 5,000 validation images, never the test
set. Run with the canonical thread count, for example::

    FASHION_COURSE_THREADS=2 python scripts/tune_mlp.py \\
        "epochs=10" "epochs=15" "epochs=15,augment=True,max_shift=0" --seeds 0 1

Times are relative: the first variant's training seconds are the unit. On a machine shared with
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


def parse(variant: str) -> dict:
    """``"epochs=15,channels=(16,64,96)"`` -> ``{"epochs": 15, "channels": (16, 64, 96)}``."""
    fields = {}
    for item in filter(None, re.split(r",(?![^(]*\))", variant)):  # commas outside parentheses
        key, _, value = item.partition("=")
        fields[key.strip()] = ast.literal_eval(value.strip())
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help='fields to change, e.g. "epochs=15,weight_decay=0.05"')
    parser.add_argument("--base", default="mlp", help="the recipe the variants start from")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    fc.seed_everything(0)  # fixes the thread count from FASHION_COURSE_THREADS
    unit = None
    for variant in args.variants:
        recipe = replace(fc.RECIPES[args.base], **parse(variant))
        accuracies, seconds = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            _, history = fc.train_recipe(recipe, seed=seed, validation=True)
            seconds.append(time.perf_counter() - start)
            accuracies.append(history.test_accuracy[-1])
        mean_s = sum(seconds) / len(seconds)
        unit = unit or mean_s
        scores = " ".join(f"{a:.2%}" for a in accuracies)
        print(f"{variant:50s} validation {scores}  mean {sum(accuracies) / len(accuracies):.2%}  "
              f"time x{mean_s / unit:.2f}", flush=True)


if __name__ == "__main__":
    main()
