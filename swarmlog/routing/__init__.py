"""Hardware-aware model routing: pure complexity estimate, decision, breaker, batching, limits."""

from __future__ import annotations

from swarmlog.routing.complexity import Complexity, TaskFeatures, estimate, features_of
from swarmlog.routing.decide import choose_route, rederive_route
from swarmlog.routing.profile import Profile, RouterConfig, router_config
from swarmlog.routing.stats import EMPTY, RouterState, apply, project

__all__ = [
    "EMPTY",
    "Complexity",
    "Profile",
    "RouterConfig",
    "RouterState",
    "TaskFeatures",
    "apply",
    "choose_route",
    "estimate",
    "features_of",
    "project",
    "rederive_route",
    "router_config",
]
