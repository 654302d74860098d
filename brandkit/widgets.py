"""Notebook widgets: upload files, page through cleaning diffs, watch the loss, compare and vote.

Built from the ipywidgets core that is the same in 7.7.1 (Colab) and 8.x (JupyterLab): HTML,
Button, Text, Textarea, ToggleButtons, FileUpload, Output, HBox and VBox. Every element a test or
a person needs to find carries a `bk-...` CSS class.
"""

from __future__ import annotations

import difflib
import html
from pathlib import Path
from typing import Any

from .compare import VOTE_CHOICES, Generation, VoteStore, blind_sides, win_rate

CSS = """<style>
.bk-out{white-space:pre-wrap;border:1px solid #ddd;border-radius:6px;padding:8px;background:#fafafa;
min-height:80px;font-size:13px;line-height:1.4}
.bk-badge{display:inline-block;border-radius:10px;padding:1px 8px;margin:2px;font-size:12px;background:#eef}
.bk-badge.good{background:#dff3e4}.bk-badge.bad{background:#fde2e2}
.bk-prompt{font-size:14px;margin:4px 0}.bk-muted{color:#777;font-size:12px}
ins{background:#dff3e4;text-decoration:none}del{background:#fde2e2}
</style>"""


def _ipw():
    import ipywidgets

    return ipywidgets


def _major() -> int:
    return int(_ipw().__version__.split(".")[0])


def esc(text: Any) -> str:
    return html.escape(str(text))


# --------------------------------------------------------------------------- collect: upload

def upload_widget(target: str | Path):
    """A file-upload button that saves the chosen files into `target` (copies; originals untouched)."""
    ipw = _ipw()
    target = Path(target)
    upload = ipw.FileUpload(multiple=True, description="Choose files")
    status = ipw.HTML("<span class='bk-muted'>Files you choose are copied into " + esc(target) + "</span>")

    def saved_files(value) -> list[tuple[str, bytes]]:
        # ipywidgets 8: a tuple of dicts with a memoryview; 7.x: a dict of name -> {"content": bytes}
        if isinstance(value, dict):
            return [(name, bytes(item["content"])) for name, item in value.items()]
        return [(item["name"], bytes(item["content"])) for item in value]

    def on_change(change):
        files = saved_files(change["new"])
        if not files:
            return
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            (target / Path(name).name).write_bytes(content)
        status.value = f"Saved {len(files)} file(s) to {esc(target)}: " + ", ".join(esc(n) for n, _ in files)

    upload.observe(on_change, names="value")
    return ipw.VBox([upload, status])


# --------------------------------------------------------------------------- clean: diffs

def inline_diff(before: str, after: str) -> str:
    """HTML of after, with removed text struck through and added text highlighted."""
    out = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.append(esc(after[j1:j2]))
        if tag in ("delete", "replace"):
            out.append(f"<del>{esc(before[i1:i2])}</del>")
        if tag in ("insert", "replace"):
            out.append(f"<ins>{esc(after[j1:j2])}</ins>")
    return "".join(out)


class DiffPager:
    """Page through every document the clean stage changed or dropped: reasons and a diff."""

    def __init__(self, records, result):
        ipw = _ipw()
        before = {r["id"]: r for r in records}
        after = {r["id"]: r for r in result.dataset}
        reasons: dict[str, list[str]] = {}
        for entry in result.audit:
            reasons.setdefault(entry["id"], []).append(f"{entry['step']}: {entry['reason']}")
        self.items = [(doc_id, before[doc_id], after.get(doc_id), reasons[doc_id]) for doc_id in reasons
                      if doc_id in before]
        self.index = 0
        self.view = ipw.HTML()
        self.position = ipw.HTML()
        self.previous = ipw.Button(description="◀ Previous")
        self.next = ipw.Button(description="Next ▶")
        self.previous.on_click(lambda _: self.show(self.index - 1))
        self.next.on_click(lambda _: self.show(self.index + 1))
        self.widget = ipw.VBox([ipw.HTML(CSS), ipw.HBox([self.previous, self.next, self.position]), self.view])
        self.show(0)

    def show(self, index: int) -> None:
        if not self.items:
            self.view.value = "<p>Nothing was changed or dropped.</p>"
            return
        self.index = index % len(self.items)
        doc_id, before, after, reasons = self.items[self.index]
        self.position.value = f"<span class='bk-muted'>{self.index + 1} / {len(self.items)}</span>"
        head = (f"<p><b>{esc(before['title'] or before['source'])}</b> <span class='bk-muted'>{esc(before['kind'])}"
                f" · {esc(before['source'])} {esc(before['locator'])}</span></p><ul>"
                + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
        body = inline_diff(before["text"], after["text"]) if after else f"<del>{esc(before['text'])}</del>"
        self.view.value = head + f"<div class='bk-out'>{body}</div>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# --------------------------------------------------------------------------- train: the label mask

def mask_html(tokenizer, messages: list[dict[str, str]], max_length: int = 1024) -> str:
    """One example as the model sees it: greyed text is context only, highlighted text is learned."""
    from .chat import tokenize_example

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

        from .figures import loss_figure

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


# --------------------------------------------------------------------------- compare: side by side

def badges(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    parts = [(f"style {row['style_score']:.2f}", row["style_score"] >= 0.5),
             (f"{int(row['words'])} words", None),
             ("sign-off" if row["sign_off"] else "no sign-off", bool(row["sign_off"])),
             (f"{int(row['banned_terms'])} banned" if row["banned_terms"] else "no banned terms",
              not row["banned_terms"])]
    if row.get("rouge_l") == row.get("rouge_l"):  # not NaN
        parts.append((f"ROUGE-L {row['rouge_l']:.2f}", None))
    return "".join(f"<span class='bk-badge {'' if good is None else 'good' if good else 'bad'}'>{esc(text)}</span>"
                   for text, good in parts)


class Comparison:
    """Side-by-side view and blind A/B voting over one set of generations.

    Votes go to `votes_path` the moment they are cast; after a kernel restart, a new Comparison
    opens each rater at their first unvoted item.
    """

    def __init__(self, generations: list[Generation], votes_path: str | Path, measures=None,
                 rater: str = "", seed: int = 3407):
        ipw = _ipw()
        self.store = VoteStore(votes_path)
        self.seed = seed
        self.items = self._pair(generations)
        self.measures = {(r["item_id"], r["model"], r["sample"]): r for r in
                         (measures.to_dict("records") if measures is not None else [])}
        self.index = 0
        self.revealed = False

        self.mode = ipw.ToggleButtons(options=["Side by side", "Blind vote"], value="Side by side")
        self.mode.add_class("bk-mode")
        self.rater = ipw.Text(value=rater, description="Your name", placeholder="who is voting?")
        self.rater.add_class("bk-rater")
        self.position = ipw.HTML()
        self.position.add_class("bk-position")
        self.prompt = ipw.HTML()
        self.prompt.add_class("bk-prompt-box")
        self.left_title, self.right_title = ipw.HTML(), ipw.HTML()
        self.left, self.right = ipw.HTML(), ipw.HTML()
        self.left.add_class("bk-left")
        self.right.add_class("bk-right")
        self.previous = ipw.Button(description="◀ Previous")
        self.previous.add_class("bk-previous")
        self.next = ipw.Button(description="Next ▶")
        self.next.add_class("bk-next")
        self.reason = ipw.Textarea(placeholder="Why? (optional)", layout=ipw.Layout(width="100%", height="60px"))
        self.reason.add_class("bk-reason")
        self.vote_buttons = {}
        for choice, label in VOTE_CHOICES.items():
            button = ipw.Button(description=label, button_style="info" if choice in ("A", "B") else "")
            button.add_class(f"bk-vote-{choice.lower().replace('_', '-')}")
            button.on_click(lambda _, c=choice: self.vote(c))
            self.vote_buttons[choice] = button
        self.status = ipw.HTML()
        self.status.add_class("bk-status")

        self.previous.on_click(lambda _: self.show(self.index - 1))
        self.next.on_click(lambda _: self.advance())
        self.mode.observe(lambda _: self.start(), names="value")
        self.rater.observe(lambda _: self.start() if self.blind else None, names="value")

        width = ipw.Layout(width="50%")
        self.columns = ipw.HBox([ipw.VBox([self.left_title, self.left], layout=width),
                                 ipw.VBox([self.right_title, self.right], layout=width)])
        self.vote_row = ipw.VBox([ipw.HBox(list(self.vote_buttons.values())), self.reason])
        self.widget = ipw.VBox([ipw.HTML(CSS), ipw.HBox([self.mode, self.rater]),
                                ipw.HBox([self.previous, self.next, self.position]), self.prompt, self.columns,
                                self.vote_row, self.status])
        self.widget.add_class("bk-comparison")
        self.start()

    @staticmethod
    def _pair(generations: list[Generation]) -> list[dict[str, Any]]:
        by_key: dict[tuple[str, int], dict[str, Any]] = {}
        for g in generations:
            entry = by_key.setdefault((g.item_id, g.sample), {"item_id": g.item_id, "sample": g.sample,
                                                               "kind": g.kind, "prompt": g.prompt,
                                                               "reference": g.reference})
            entry[g.model] = g.text
        return [e for e in by_key.values() if "base" in e and "tuned" in e]

    @property
    def blind(self) -> bool:
        return self.mode.value == "Blind vote"

    def start(self) -> None:
        """Show the first item (side by side) or the rater's first unvoted item (blind)."""
        self.vote_row.layout.display = "flex" if self.blind else "none"
        self.rater.layout.display = "flex" if self.blind else "none"
        if self.blind:
            done = self.store.voted(self.rater.value) if self.rater.value.strip() else set()
            self.show(next((i for i, item in enumerate(self.items) if (item["item_id"], item["sample"]) not in done),
                           len(self.items) - 1 if self.items else 0))
        else:
            self.show(self.index)

    def advance(self) -> None:
        if not self.blind:
            return self.show(self.index + 1)
        done = self.store.voted(self.rater.value)
        later = [i for i in range(self.index + 1, len(self.items))
                 if (self.items[i]["item_id"], self.items[i]["sample"]) not in done]
        self.show(later[0] if later else self.index + 1)

    def sides(self, item: dict[str, Any]) -> tuple[str, str]:
        return blind_sides(item["item_id"], item["sample"], self.rater.value.strip(), self.seed)

    def show(self, index: int) -> None:
        if not self.items:
            self.prompt.value = "<p>No generations to compare yet.</p>"
            return
        self.index = max(0, min(index, len(self.items) - 1))
        item = self.items[self.index]
        self.prompt.value = (f"<div class='bk-prompt'><b>Prompt</b> <span class='bk-muted'>({esc(item['kind'])}, "
                             f"{esc(item['item_id'])})</span><br>{esc(item['prompt'])}</div>")
        if self.blind:
            done = (item["item_id"], item["sample"]) in self.store.voted(self.rater.value)
            self.revealed = done
            a, b = self.sides(item)
            self.left_title.value = "<b>A</b>" + (f" <span class='bk-reveal'>= {a}</span>" if done else "")
            self.right_title.value = "<b>B</b>" + (f" <span class='bk-reveal'>= {b}</span>" if done else "")
            self.left.value = f"<div class='bk-out'>{esc(item[a])}</div>"
            self.right.value = f"<div class='bk-out'>{esc(item[b])}</div>"
            for button in self.vote_buttons.values():
                button.disabled = done or not self.rater.value.strip()
            voted = len(self.store.voted(self.rater.value)) if self.rater.value.strip() else 0
            self.position.value = (f"<span class='bk-muted'>item {self.index + 1} / {len(self.items)} · "
                                   f"{voted} voted</span>")
            if not self.rater.value.strip():
                self.status.value = "<span class='bk-muted'>Type your name to start voting.</span>"
            elif not done:
                self.status.value = "<span class='bk-muted'>Which answer sounds more like the brand?</span>"
        else:
            key = (item["item_id"], item["sample"])
            self.left_title.value = "<b>Base (untuned)</b> " + badges(self.measures.get((*key[:1], "base", key[1])))
            self.right_title.value = "<b>Tuned</b> " + badges(self.measures.get((*key[:1], "tuned", key[1])))
            self.left.value = f"<div class='bk-out'>{esc(item['base'])}</div>"
            self.right.value = f"<div class='bk-out'>{esc(item['tuned'])}</div>"
            self.position.value = f"<span class='bk-muted'>{self.index + 1} / {len(self.items)}</span>"
            self.status.value = ""

    def vote(self, choice: str) -> dict[str, Any]:
        """Record a vote for the current item and reveal which model was which."""
        item = self.items[self.index]
        sides = self.sides(item)
        vote = self.store.add(self.rater.value, item["item_id"], item["sample"], choice, sides, self.reason.value)
        self.reason.value = ""
        self.show(self.index)
        rate = win_rate(self.store.votes())
        self.status.value = (f"<span class='bk-voted'>Saved: {esc(VOTE_CHOICES[choice])}. A was <b>{sides[0]}</b>, "
                             f"B was <b>{sides[1]}</b>.</span> <span class='bk-muted'>Tuned win rate so far "
                             f"{rate.rate:.0%} of {rate.votes} vote(s).</span>")
        return vote

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
