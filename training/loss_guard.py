"""The guard of every training run: each step's loss terms are judged against their own recent
past, and weights known to be good are kept in memory to go back to.

One gradient step can blow weights up beyond repair: on the drone set the loss spiked to 11,534 and
the regularization term then sat at 2,150 (it starts at 0.49) for the rest of the run, while the
total looked like any other loss; the weights trained on for 20 minutes, and their int8 file could
not run. Weights that large do not come back by themselves (weight decay shrinks them by a
millionth a step), so the run returns to a copy from before the spike, at a lower learning rate.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

#: The loss terms judged, by the names ``eager_train_step`` gives them.
TERMS = {
    "classification": "Loss/classification_loss",
    "localization": "Loss/localization_loss",
    "regularization": "Loss/regularization_loss",
}


class LossJudge:
    """Says whether a step's losses show a blow-up.

    A blow-up is a term that is NaN or infinite; a regularization loss above
    ``regularization_factor`` times its lowest value of the run (it only grows when weights do, and
    a fine-tuned run's moves by a few per cent at most); or a classification or localization loss
    more than ``spike_factor`` times its median over the last ``window`` healthy steps and above
    their usual sum (so that a small term's wobble is not one), ``confirm`` steps in a row.

    One such step alone is a hard batch, not damaged weights: with the gradient clipped, on the
    drone set a step whose classification loss was 9.4x its median (27.4 against 2.9) was followed
    by an ordinary one, while each return costs the run half its learning rate for good. Such a step is
    ``suspect``: it neither joins the history nor counts as healthy."""

    def __init__(self, window: int = 50, spike_factor: float = 10.0, regularization_factor: float = 2.0,
                 min_history: int = 10, confirm: int = 3):
        self.spike_factor = spike_factor
        self.regularization_factor = regularization_factor
        self.min_history = min_history
        self.confirm = confirm
        self._spikes_in_a_row = 0
        self._history = {name: deque(maxlen=window) for name in ("classification", "localization", "data")}
        self._lowest_regularization = math.inf

    @property
    def suspect(self) -> bool:
        """The last step judged, when not a blow-up, was a spike not yet confirmed."""
        return self._spikes_in_a_row > 0

    def blow_up(self, losses: dict[str, float]) -> str | None:
        """What blew up in this step's ``losses`` (``Loss/...`` → value), or None when it did not.
        A healthy step joins the history the next steps are judged against; a spike not yet
        confirmed sets ``suspect``."""
        values = {name: float(losses[key]) for name, key in TERMS.items() if key in losses}
        for name, value in values.items():
            if not math.isfinite(value):
                return f"the {name} loss is {value}"
        regularization = values.get("regularization")
        if regularization is not None:
            if regularization > self.regularization_factor * self._lowest_regularization:
                return (f"the regularization loss left its range: {regularization:.4g}, "
                        f"{_times(regularization / self._lowest_regularization)} its lowest of the run "
                        f"({self._lowest_regularization:.3g}): weights blew up")
            self._lowest_regularization = min(self._lowest_regularization, regularization)
        data = self._history["data"]
        for name in ("classification", "localization"):
            history = self._history[name]
            if name in values and len(history) >= self.min_history:
                usual = statistics.median(history)
                if values[name] > self.spike_factor * usual and values[name] > statistics.median(data):
                    self._spikes_in_a_row += 1
                    if self._spikes_in_a_row < self.confirm:
                        return None
                    self._spikes_in_a_row = 0
                    return (f"the {name} loss jumped to {values[name]:.4g}, {_times(values[name] / usual)} its median of "
                            f"the last {len(history)} steps ({usual:.3g}), {self.confirm} steps in a row")
        self._spikes_in_a_row = 0
        for name in ("classification", "localization"):
            if name in values:
                self._history[name].append(values[name])
        data.append(values.get("classification", 0.0) + values.get("localization", 0.0))
        return None


class GoodWeights:
    """An in-memory copy of the weights and optimizer state to go back to, at most ``2 * every``
    healthy steps old.

    A copy is taken every ``every`` healthy steps, but becomes the one to go back to only once
    ``every`` more healthy steps have followed it: a spike can show a few steps after the update
    that caused it. The run's start is good by definition (its slots, created by the first step,
    then go back to zero)."""

    def __init__(self, variables, step: int, every: int = 25):
        self._variables = variables  # a callable: the model's and the optimizer's variables now
        self.every = every
        self.step, self._values = step, self._copy()
        self._candidate: tuple[int, dict] | None = None

    def healthy(self, step: int) -> None:
        """Record that ``step`` was healthy."""
        if self._candidate is None:
            if step - self.step >= self.every:
                self._candidate = step, self._copy()
        elif step - self._candidate[0] >= self.every:
            self.step, self._values = self._candidate
            self._candidate = step, self._copy()

    def restore(self) -> int:
        """Put the good copy back (and forget the unconfirmed one); returns the step it was taken at."""
        for variable in self._variables():
            value = self._values.get(variable.ref())
            variable.assign(value if value is not None else _zeros(variable))
        self._candidate = None
        return self.step

    def _copy(self) -> dict:
        return {variable.ref(): variable.numpy() for variable in self._variables()}


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _zeros(variable):
    import numpy as np

    return np.zeros(variable.shape, variable.dtype.as_numpy_dtype)


class Diverged(Exception):
    """The run blew up again after its last allowed return to good weights."""


class Guard:
    """Judges every step; on a blow-up puts the good weights back and cuts the learning rate by
    ``cut`` (``learning_rate_scale``, a variable the optimizer's schedule is multiplied by), at
    most ``max_rollbacks`` times; the next blow-up raises :class:`Diverged`, the good weights back
    in place. The global step goes back with them (the detection model tracks it among its
    variables), so the run trains those steps again at the lower rate and losses.csv repeats them."""

    def __init__(self, variables, learning_rate_scale, step: int, *, max_rollbacks: int = 3, cut: float = 0.5,
                 judge: LossJudge | None = None, every: int = 25):
        self.judge = judge or LossJudge()
        self.good = GoodWeights(variables, step, every)
        self.learning_rate_scale = learning_rate_scale
        self.max_rollbacks, self.cut = max_rollbacks, cut
        self.rollbacks = 0

    def describe(self) -> str:
        return (f"guard: a loss term that explodes sends the weights back to an in-memory copy at most "
                f"{2 * self.good.every} steps old, at {self.cut:g}x the learning rate ({self.max_rollbacks} times at most)")

    def after_step(self, step: int, losses: dict[str, float]) -> str | None:
        """None when ``step`` was healthy; else the line that says what blew up and what was done."""
        reason = self.judge.blow_up(losses)
        if reason is None:
            if not self.judge.suspect:
                self.good.healthy(step)
            return None
        good_step = self.good.restore()
        if self.rollbacks == self.max_rollbacks:
            raise Diverged(f"step {step}: {reason}, {self.rollbacks + 1} times now, the last at "
                           f"{float(self.learning_rate_scale.numpy()):g}x the learning rate")
        self.rollbacks += 1
        self.learning_rate_scale.assign(self.learning_rate_scale * self.cut)
        return (f"step {step}: {reason}; back to the weights of step {good_step}, learning rate now "
                f"{float(self.learning_rate_scale.numpy()):g}x the schedule ({self.rollbacks} of {self.max_rollbacks} returns)")
