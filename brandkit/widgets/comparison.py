"""The comparison widget: blind votes first, an editing mode, and the labelled view once the rater reveals it.

Blind first: a rater sees answers as A and B (random sides per item, pair and rater), and drafts to
edit with no name on them; the labelled side-by-side view and the running win rates stay hidden
until they have voted on every item or choose to reveal. Every item they then see labelled is
logged, and a later vote or edit on it is flagged (`seen_labelled`). While blind, no widget's
state names a contender: the same few widgets are refilled for each mode, never hidden with
labelled content in them.

Votes (votes.jsonl), edits (edits.jsonl) and what was seen labelled (labels_seen.jsonl) are
appended durably the moment they happen; after a kernel restart a new Comparison opens each rater
at their first item still to do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..compare import (CONTENDERS, PAIRS, SHORT_LABELS, VOTE_CHOICES, EditStore, Generation, LabelLog, VoteStore,
                       blind_sides, edit_key, edit_order, pair_key, pair_results)
from .common import CSS, Displayable, _ipw, esc

BLIND, EDIT, LABELLED = "Blind vote", "Edit a draft", "Labelled view"


def badges(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    parts = [(f"style {row['style_score']:.2f}", row["style_score"] >= 0.5),
             (f"{int(row['words'])} words", None),
             ("sign-off" if row["sign_off"] else "no sign-off", bool(row["sign_off"])),
             (f"{int(row['banned_terms'])} banned" if row["banned_terms"] else "no banned terms",
              not row["banned_terms"])]
    if row.get("prompt_tokens"):
        parts.append((f"prompt {int(row['prompt_tokens'])} tokens", None))
    if row.get("rouge_l") == row.get("rouge_l") and row.get("rouge_l") is not None:  # not NaN
        parts.append((f"ROUGE-L {row['rouge_l']:.2f}", None))
    return "".join(f"<span class='bk-badge {'' if good is None else 'good' if good else 'bad'}'>{esc(text)}</span>"
                   for text, good in parts)


class Comparison(Displayable):
    """Blind votes, blind editing and (once revealed) the labelled view over one set of generations."""

    def __init__(self, generations: list[Generation], votes_path: str | Path, measures=None,
                 rater: str = "", seed: int = 3407, edits_path: str | Path | None = None,
                 labels_path: str | Path | None = None, pairs: list[tuple[str, str]] | None = None):
        ipw = _ipw()
        votes_path = Path(votes_path)
        self.store = VoteStore(votes_path)
        self.edit_store = EditStore(edits_path or votes_path.parent / "edits.jsonl")
        self.labels = LabelLog(labels_path or votes_path.parent / "labels_seen.jsonl")
        self.seed = seed
        self.items, self.contenders = self._group(generations)
        self.pairs = pairs or [p for p in PAIRS if set(p) <= set(self.contenders)] or \
            ([tuple(sorted(self.contenders, key=lambda c: (c != "tuned", c)))[:2]] if len(self.contenders) > 1 else [])
        # every item for the pair that matters first (tuned vs prompted generic), then the next pair
        self.tasks = [(index, pair) for pair in self.pairs for index in range(len(self.items))]
        self.measures = {(r["item_id"], r["model"], r["sample"]): r for r in
                         (measures.to_dict("records") if measures is not None else [])}
        self.index = 0
        self.revealed = False
        self.edit_started = time.monotonic()

        self.mode = ipw.ToggleButtons(options=[BLIND, EDIT], value=BLIND)
        self.mode.add_class("bk-mode")
        self.rater = ipw.Text(value=rater, description="Your name", placeholder="who is rating?")
        self.rater.add_class("bk-rater")
        self.reveal_button = ipw.Button(description="Reveal the labels", tooltip="items you then see are flagged")
        self.reveal_button.add_class("bk-reveal-labels")
        self.reveal_button.on_click(lambda _: self.reveal())
        self.position = ipw.HTML()
        self.position.add_class("bk-position")
        self.prompt = ipw.HTML()
        self.prompt.add_class("bk-prompt-box")
        self.titles = [ipw.HTML() for _ in range(max(len(self.contenders), 2))]
        self.bodies = [ipw.HTML() for _ in self.titles]
        for n, body in enumerate(self.bodies):
            body.add_class(["bk-left", "bk-right", "bk-third"][n] if n < 3 else f"bk-col-{n}")
        self.left, self.right = self.bodies[0], self.bodies[1]
        self.left_title, self.right_title = self.titles[0], self.titles[1]
        self.column_boxes = [ipw.VBox([t, b]) for t, b in zip(self.titles, self.bodies, strict=True)]
        self.columns = ipw.HBox(self.column_boxes)
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
        self.vote_row = ipw.VBox([ipw.HBox(list(self.vote_buttons.values())), self.reason])
        self.draft = ipw.Textarea(layout=ipw.Layout(width="100%", height="260px"))
        self.draft.add_class("bk-edit")
        self.save_button = ipw.Button(description="Save: I would send this", button_style="success",
                                      layout=ipw.Layout(width="auto"))
        self.save_button.add_class("bk-edit-save")
        self.save_button.on_click(lambda _: self.save_edit())
        self.edit_row = ipw.VBox([self.draft, self.save_button])
        self.status = ipw.HTML()
        self.status.add_class("bk-status")
        self.results = ipw.HTML()
        self.results.add_class("bk-winrate")

        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.advance())
        self._updating = False
        self.mode.observe(lambda _: None if self._updating else self.start(), names="value")
        self.rater.observe(lambda _: self.start(), names="value")

        self.widget = ipw.VBox([ipw.HTML(CSS), ipw.HBox([self.rater, self.mode, self.reveal_button]),
                                ipw.HBox([self.previous, self.next, self.position]), self.prompt, self.columns,
                                self.vote_row, self.edit_row, self.status, self.results])
        self.widget.add_class("bk-comparison")
        self.start()

    # ------------------------------------------------------------------ data

    @staticmethod
    def _group(generations: list[Generation]) -> tuple[list[dict[str, Any]], list[str]]:
        by_key: dict[tuple[str, int], dict[str, Any]] = {}
        for g in generations:
            entry = by_key.setdefault((g.item_id, g.sample), {"item_id": g.item_id, "sample": g.sample,
                                                               "kind": g.kind, "prompt": g.prompt,
                                                               "reference": g.reference, "texts": {},
                                                               "tokens": {}})
            entry["texts"][g.model] = g.text
            entry["tokens"][g.model] = g.prompt_tokens
        present = {m for e in by_key.values() for m in e["texts"]}
        contenders = [c for c in CONTENDERS if c in present] + sorted(present - set(CONTENDERS))
        items = [e for e in by_key.values() if all(c in e["texts"] for c in contenders)]
        return items, contenders

    @property
    def who(self) -> str:
        return self.rater.value.strip()

    @property
    def blind(self) -> bool:
        return self.mode.value == BLIND

    def voted(self) -> set[tuple[str, int, str]]:
        return self.store.voted(self.who) if self.who else set()

    def task_done(self, task: tuple[int, tuple[str, str]], voted: set | None = None) -> bool:
        item = self.items[task[0]]
        return (item["item_id"], item["sample"], pair_key(*task[1])) in (self.voted() if voted is None else voted)

    def edit_tasks(self) -> list[tuple[int, str]]:
        tasks = [(i, c) for i in range(len(self.items)) for c in self.contenders]
        return sorted(tasks, key=lambda t: edit_order(self.who, self.items[t[0]]["item_id"],
                                                      self.items[t[0]]["sample"], t[1], self.seed))

    def edit_done(self, task: tuple[int, str], done: set[str] | None = None) -> bool:
        item = self.items[task[0]]
        key = edit_key(self.who, item["item_id"], item["sample"], task[1])
        return key in (self.edit_store.done(self.who) if done is None else done)

    def all_voted(self) -> bool:
        voted = self.voted()
        return bool(self.tasks) and all(self.task_done(t, voted) for t in self.tasks)

    # ------------------------------------------------------------------ modes

    def start(self) -> None:
        """Refill the view for the mode and rater: the first item still to do, or the first item labelled."""
        self.revealed = bool(self.who) and (self.labels.revealed(self.who) or self.all_voted())
        options = [BLIND, EDIT] + ([LABELLED] if self.revealed else [])
        if list(self.mode.options) != options:
            value = self.mode.value if self.mode.value in options else BLIND
            self._updating = True  # changing the options may change the value: no nested refill
            try:
                self.mode.options = options
                self.mode.value = value
            finally:
                self._updating = False
        self.reveal_button.layout.display = "none" if self.revealed or not self.who else "flex"
        self.vote_row.layout.display = "flex" if self.mode.value == BLIND else "none"
        self.edit_row.layout.display = "flex" if self.mode.value == EDIT else "none"
        self.columns.layout.display = "none" if self.mode.value == EDIT else "flex"
        self.results.value = self.results_html() if self.revealed else ""
        if self.mode.value == BLIND:
            voted = self.voted()
            self.show(next((i for i, t in enumerate(self.tasks) if not self.task_done(t, voted)),
                           max(len(self.tasks) - 1, 0)))
        elif self.mode.value == EDIT:
            done = self.edit_store.done(self.who) if self.who else set()
            tasks = self.edit_tasks()
            self.show(next((i for i, t in enumerate(tasks) if not self.edit_done(t, done)), max(len(tasks) - 1, 0)))
        else:
            self.show(0)

    def step(self, delta: int) -> None:
        self.show(self.index + delta)

    def advance(self) -> None:
        if self.mode.value == BLIND and self.who:
            voted = self.voted()
            later = [i for i in range(self.index + 1, len(self.tasks)) if not self.task_done(self.tasks[i], voted)]
            return self.show(later[0] if later else self.index + 1)
        if self.mode.value == EDIT and self.who:
            done = self.edit_store.done(self.who)
            tasks = self.edit_tasks()
            later = [i for i in range(self.index + 1, len(tasks)) if not self.edit_done(tasks[i], done)]
            return self.show(later[0] if later else self.index + 1)
        return self.show(self.index + 1)

    def _columns(self, count: int) -> None:
        width = f"{100 // max(count, 1)}%"
        for n, box in enumerate(self.column_boxes):
            box.layout.display = "flex" if n < count else "none"
            box.layout.width = width
            if n >= count:  # never keep another mode's (labelled) content in a hidden widget
                self.titles[n].value = self.bodies[n].value = ""

    def _prompt(self, item: dict[str, Any], label: str) -> None:
        self.prompt.value = (f"<div class='bk-prompt'><b>{esc(label)}</b> <span class='bk-muted'>({esc(item['kind'])}, "
                             f"{esc(item['item_id'])})</span><br>{esc(item['prompt'])}</div>")

    def show(self, index: int) -> None:
        if not self.items:
            self.prompt.value = "<p>No generations to compare yet.</p>"
            return
        if self.mode.value == BLIND:
            self._show_blind(index)
        elif self.mode.value == EDIT:
            self._show_edit(index)
        else:
            self._show_labelled(index)

    def _show_blind(self, index: int) -> None:
        self.index = max(0, min(index, len(self.tasks) - 1))
        item_index, pair = self.tasks[self.index]
        item = self.items[item_index]
        self._prompt(item, "Prompt")
        self._columns(2)
        a, b = self.sides()
        self.left_title.value, self.right_title.value = "<b>A</b>", "<b>B</b>"
        self.left.value = f"<div class='bk-out'>{esc(item['texts'][a])}</div>"
        self.right.value = f"<div class='bk-out'>{esc(item['texts'][b])}</div>"
        voted = self.voted()
        done = self.task_done(self.tasks[self.index], voted)
        for button in self.vote_buttons.values():
            button.disabled = done or not self.who
        self.position.value = (f"<span class='bk-muted'>item {self.index + 1} / {len(self.tasks)} · "
                               f"{len(voted & {self._task_id(t) for t in self.tasks})} voted</span>")
        if not self.who:
            self.status.value = "<span class='bk-muted'>Type your name to start.</span>"
        elif done:
            self.status.value = "<span class='bk-muted'>You voted on this one already.</span>"
        else:
            self.status.value = "<span class='bk-muted'>Which answer sounds more like the brand?</span>"

    def _task_id(self, task: tuple[int, tuple[str, str]]) -> tuple[str, int, str]:
        item = self.items[task[0]]
        return item["item_id"], item["sample"], pair_key(*task[1])

    def _show_edit(self, index: int) -> None:
        tasks = self.edit_tasks()
        self.index = max(0, min(index, len(tasks) - 1))
        item_index, contender = tasks[self.index]
        item = self.items[item_index]
        self._prompt(item, "Request")
        self._columns(0)
        done_keys = self.edit_store.done(self.who) if self.who else set()
        key = edit_key(self.who, item["item_id"], item["sample"], contender)
        saved = next((e for e in self.edit_store.edits() if e["key"] == key), None) if key in done_keys else None
        self.draft.value = saved["sent"] if saved else item["texts"][contender]
        self.draft.disabled = saved is not None or not self.who
        self.save_button.disabled = saved is not None or not self.who
        self.edit_started = time.monotonic()
        mine = sum(self.edit_done(t, done_keys) for t in tasks)
        self.position.value = (f"<span class='bk-muted'>draft {self.index + 1} / {len(tasks)} · "
                               f"{mine} saved</span>")
        if not self.who:
            self.status.value = "<span class='bk-muted'>Type your name to start.</span>"
        elif saved:
            self.status.value = "<span class='bk-muted'>You saved this draft already (shown as you sent it).</span>"
        else:
            self.status.value = ("<span class='bk-muted'>Edit this draft until you would send it, then save. "
                                 "Who wrote it is not shown.</span>")

    def _show_labelled(self, index: int) -> None:
        self.index = max(0, min(index, len(self.items) - 1))
        item = self.items[self.index]
        self._prompt(item, "Prompt")
        self._columns(len(self.contenders))
        if self.who:
            self.labels.saw(self.who, item["item_id"], item["sample"])
        for n, contender in enumerate(self.contenders):
            row = self.measures.get((item["item_id"], contender, item["sample"]))
            tokens = item["tokens"].get(contender)
            extra = (f"<span class='bk-badge'>prompt {tokens} tokens</span>"
                     if tokens and not (row and row.get("prompt_tokens")) else "")
            self.titles[n].value = f"<b>{esc(SHORT_LABELS.get(contender, contender))}</b> " + badges(row) + extra
            self.bodies[n].value = f"<div class='bk-out'>{esc(item['texts'][contender])}</div>"
        self.position.value = f"<span class='bk-muted'>{self.index + 1} / {len(self.items)}</span>"
        self.status.value = "<span class='bk-muted'>Labels shown: votes and edits on items you see here are flagged.</span>"

    # ------------------------------------------------------------------ actions

    def sides(self, task: tuple[int, tuple[str, str]] | None = None) -> tuple[str, str]:
        item_index, pair = task or self.tasks[self.index]
        item = self.items[item_index]
        return blind_sides(item["item_id"], item["sample"], self.who, self.seed, pair)

    def seen_labelled(self, item: dict[str, Any]) -> bool:
        return (item["item_id"], item["sample"]) in self.labels.seen(self.who)

    def vote(self, choice: str) -> dict[str, Any]:
        """Record a vote for the current pair; nothing is revealed until every item is voted on."""
        task = self.tasks[self.index]
        item = self.items[task[0]]
        vote = self.store.add(self.who, item["item_id"], item["sample"], choice, self.sides(task), self.reason.value,
                              seen_labelled=self.seen_labelled(item))
        self.reason.value = ""
        finished = self.all_voted() and not self.revealed
        if finished:
            self.labels.reveal(self.who, "voted on every item")
            self.start()
            self.status.value = ("<span class='bk-voted'>Saved. You have voted on every item: the labels and the "
                                 "win rates are shown now.</span>")
        else:
            self.show(self.index)
            voted = len(self.voted() & {self._task_id(t) for t in self.tasks})
            self.status.value = (f"<span class='bk-voted'>Saved: {esc(VOTE_CHOICES[choice])}.</span> "
                                 f"<span class='bk-muted'>{voted} of {len(self.tasks)} voted.</span>")
            if self.revealed:
                self.results.value = self.results_html()
        return vote

    def save_edit(self) -> dict[str, Any]:
        """Save the current draft as the rater would send it, with the time it took, then go to the next one."""
        tasks = self.edit_tasks()
        item_index, contender = tasks[self.index]
        item = self.items[item_index]
        record = self.edit_store.add(self.who, item["item_id"], item["sample"], contender, item["texts"][contender],
                                     self.draft.value, time.monotonic() - self.edit_started,
                                     seen_labelled=self.seen_labelled(item))
        saved_at = self.index
        self.advance()
        if self.index == saved_at:
            self.show(saved_at)
        self.status.value = (f"<span class='bk-voted'>Saved draft {saved_at + 1}: {record['kept']:.0%} of the draft "
                             f"kept (similarity {record['similarity']:.2f}), in {record['seconds']:.0f} s.</span>")
        return record

    def reveal(self) -> None:
        """The rater chooses to see the labels before voting on everything (what they then see is flagged)."""
        if not self.who:
            self.status.value = "<span class='bk-muted'>Type your name first.</span>"
            return
        self.labels.reveal(self.who)
        self.start()

    def results_html(self) -> str:
        votes = self.store.votes()
        lines = []
        for rate in pair_results(votes):
            lines.append(f"<li><b>{esc(SHORT_LABELS.get(rate.model, rate.model))}</b> over "
                         f"{esc(SHORT_LABELS.get(rate.other, rate.other))}: {rate.rate:.0%} "
                         f"(95% interval over prompts {rate.low:.0%} to {rate.high:.0%}; {rate.votes} vote(s) on "
                         f"{rate.prompts} prompt(s))</li>")
        return ("<div class='bk-muted'>Win rates so far (ties and \"both bad\" count half):</div><ul>"
                + "".join(lines) + "</ul>") if lines else ""
