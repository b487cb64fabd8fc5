"""The render budget's time limit, on fake clocks: it counts the rendering thread's CPU
time, so an honest render that waited for a core on a loaded machine is not failed, while a
runaway one is, and a render that waits far too long is stopped by the wall-clock backstop."""

from __future__ import annotations

import pytest

from campaigner.messages.budget import WALL_BACKSTOP, RenderBudget, RenderLimits, TemplateLimit


class Clocks:
    """A wall clock and a thread CPU clock the test moves; counts CPU clock reads."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.cpu_used = 5.0
        self.cpu_reads = 0

    def wall(self) -> float:
        return self.now

    def cpu(self) -> float:
        self.cpu_reads += 1
        return self.cpu_used

    def budget(self, seconds: float) -> RenderBudget:
        return RenderBudget(RenderLimits(seconds=seconds), cpu=self.cpu, wall=self.wall)


def test_an_honest_render_that_waited_for_a_core_is_not_failed() -> None:
    """Regression: with a wall-clock budget, an honest message rendered on a loaded machine
    (or after a runaway template, with a tenth of the time) failed with template_limit."""
    clocks = Clocks()
    budget = clocks.budget(0.1)
    clocks.now += 0.1 * WALL_BACKSTOP - 0.01  # waited nearly the backstop...
    clocks.cpu_used += 0.02  # ...computing for a fifth of its budget
    budget.tick()
    budget.built_value("Thanks Sara for order 3")


def test_a_render_over_its_cpu_time_fails() -> None:
    clocks = Clocks()
    budget = clocks.budget(0.5)
    clocks.now += 0.4
    clocks.cpu_used += 0.4
    budget.tick()
    clocks.now += 0.2
    clocks.cpu_used += 0.2
    with pytest.raises(TemplateLimit, match=r"took longer than 0\.5s \(CPU time\)"):
        budget.tick()


def test_a_render_waiting_past_the_backstop_fails() -> None:
    clocks = Clocks()
    budget = clocks.budget(1.0)
    clocks.now += WALL_BACKSTOP - 0.01
    budget.tick()
    clocks.now += 0.02
    with pytest.raises(TemplateLimit, match=rf"took longer than {WALL_BACKSTOP}s"):
        budget.tick()


def test_the_cpu_clock_is_read_only_once_the_wall_clock_passed_the_budget() -> None:
    """Reading the thread's CPU time costs a system call; an honest render ticks hundreds of
    times well within its budget and should not pay for it."""
    clocks = Clocks()
    budget = clocks.budget(1.0)
    for _ in range(1000):
        clocks.now += 0.0005
        budget.tick()
    assert clocks.cpu_reads == 1  # the start
    clocks.now += 1.0
    budget.tick()
    assert clocks.cpu_reads == 2
