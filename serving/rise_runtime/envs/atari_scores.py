"""Human-normalized scores from the published random/human reference scores (TensorFlow-free).

Data: serving/rise_runtime/data/atari_reference_scores.csv (Mnih et al. 2015 protocol: 1-30 no-op starts,
108,000-frame cap), keyed by snake_case game name. HNS = (score - random) / (human - random).
"""
from __future__ import annotations

import csv
import functools
import re
from importlib import resources
from typing import Dict, Optional, Tuple


def snake_case(game: str) -> str:
    """'SpaceInvaders' or 'ALE/SpaceInvaders-v5' -> 'space_invaders'."""
    match = re.fullmatch(r"ALE/(\w+)-v\d+", game)
    name = match.group(1) if match else game
    return re.sub(r"(?<=[a-zA-Z0-9])(?=[A-Z])", "_", name).lower()


@functools.lru_cache(maxsize=1)
def reference_scores() -> Dict[str, Tuple[float, float]]:
    """{snake_case game: (random score, human score)}."""
    text = resources.files("rise_runtime.data").joinpath("atari_reference_scores.csv").read_text()
    return {row["game"]: (float(row["random"]), float(row["human"])) for row in csv.DictReader(text.splitlines())}


def human_normalized_score(game: str, score: float) -> Optional[float]:
    """HNS of a raw score, or None for a game without reference scores (e.g. the memory task)."""
    reference = reference_scores().get(snake_case(game))
    if reference is None:
        return None
    random_score, human_score = reference
    return (score - random_score) / (human_score - random_score)


# Named game subsets from the literature (ALE names, resolved like any --game).
GAME_SUBSETS = {
    # Atari-5 (Aitchison et al. 2022): five games whose scores predict the 57-game median.
    "atari5": ("BattleZone", "DoubleDunk", "NameThisGame", "Phoenix", "Qbert"),
    # Atari 100k (Kaiser et al. 2020): the 26-game sample-efficiency benchmark.
    "atari100k": ("Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout",
                  "ChopperCommand", "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero",
                  "Jamesbond", "Kangaroo", "Krull", "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert",
                  "RoadRunner", "Seaquest", "UpNDown"),
}
