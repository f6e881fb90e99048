"""Small helpers every layer may use (no I/O)."""

from __future__ import annotations

import errno
import random
import time
import uuid

# The errno values that mean "the disk is full" (ENOSPC) or "over quota" (EDQUOT): the
# server answers them with 507 rather than a 500.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

_ADJECTIVES = (
    "amber bold brave bright calm clever crisp eager fancy gentle happy honest jolly keen "
    "kind lively lucid merry mighty nimble noble polite proud quick quiet rapid sharp shiny "
    "silent sleek smart snowy solid spry steady sunny swift tidy upbeat vivid warm wise witty"
).split()
_NOUNS = (
    "ant badger bat bear bee bird boar cat crane crow deer dog dove duck eagle eel elk fox "
    "frog gecko goat goose hawk heron horse ibis jay koala lark lion lynx mole moose newt owl "
    "panda pig puma quail ram raven seal shark sheep slug snail squid stork swan tiger toad "
    "trout whale wolf worm yak zebra"
).split()


def now_ms() -> int:
    return int(time.time() * 1000)


def new_run_id() -> str:
    """32 hex characters, the shape MLflow clients expect of a run id."""
    return uuid.uuid4().hex


def random_name(sep: str = "-") -> str:
    """A readable generated name (``brave-owl-123``), as MLflow and Azure give unnamed runs."""
    rnd = random.SystemRandom()
    return f"{rnd.choice(_ADJECTIVES)}{sep}{rnd.choice(_NOUNS)}{sep}{rnd.randint(100, 999)}"
