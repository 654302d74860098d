"""Training widgets: one example's answers-only mask, and the live loss plot."""

from __future__ import annotations

from typing import Any

from .common import _ipw, esc


def mask_html(tokenizer, messages: list[dict[str, str]], max_length: int = 1024) -> str:
    """One example as the model sees it: greyed text is context only, highlighted text is learned."""
    from ..chat import tokenize_example

    example = tokenize_example(tokenizer, messages, max_length)
    pieces, current, flag = [], [], None
    for token, learned in zip(example["input_ids"], example["assistant_masks"], strict=True):
        if learned != flag and current:
            pieces.append((flag, tokenizer.decode(current)))
            current = []
        flag = learned
        current.append(token)
    if current:
        pieces.append((flag, tokenizer.decode(current)))
    spans = "".join(f"<span style='{'background:#dff3e4' if learned else 'color:#999'}'>{esc(text)}</span>"
                    for learned, text in pieces)
    trained = sum(example["assistant_masks"])
    return (f"<div class='bk-muted'>{trained} of {len(example['input_ids'])} tokens are learned (highlighted); "
            f"the rest is context the model reads but is not trained to write.</div><div class='bk-out'>{spans}</div>")


# --------------------------------------------------------------------------- train: live loss

class LiveLossPlot:
    """A training callback that redraws the training and validation loss in the notebook."""

    def __init__(self, every: int = 1):
        from transformers import TrainerCallback

        self.every = every
        self.history: list[dict[str, Any]] = []
        outer = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and ("loss" in logs or "eval_loss" in logs):
                    outer.history.append({**logs, "step": state.global_step})
                    if len(outer.history) % outer.every == 0:
                        outer.draw(state.max_steps)

        self.callback = Callback()
        self.output = _ipw().Output()

    def draw(self, max_steps: int | None = None) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        from ..figures import loss_figure

        with self.output:
            clear_output(wait=True)
            figure = loss_figure(self.history)
            if max_steps:
                figure.axes[0].set_xlim(0, max_steps)
            display(figure)
            plt.close(figure)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.output)
