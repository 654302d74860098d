"""The playground: type any request and watch the contenders answer side by side, as they generate.

One model is in memory (the compare stage's): the adapter is switched off for the two generic
contenders and on for the tuned one, and each answer streams in through transformers'
TextIteratorStreamer. Sampling is set with sliders. An answer worth keeping is appended to
compare/playground.jsonl in the run folder, durably.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..compare import ADAPTER, CONTENDERS, SHORT_LABELS, PromptBuilder, answer_text, append_jsonl, stream
from ..compare.votes import now
from ..config import CompareConfig
from .common import CSS, Displayable, _ipw, esc


class Playground(Displayable):
    """A request box, sampling controls, and one streaming answer per contender with a Keep button."""

    def __init__(self, model, tokenizer, builder: PromptBuilder, path: str | Path,
                 config: CompareConfig | None = None, contenders: tuple[str, ...] = CONTENDERS):
        ipw = _ipw()
        self.model, self.tokenizer, self.builder = model, tokenizer, builder
        self.path = Path(path)
        self.config = config or CompareConfig()
        self.contenders = contenders
        self.answers: dict[str, str] = {}
        self.last_request = ""
        self.updates = 0  # how many times an answer pane was redrawn while streaming

        self.request = ipw.Textarea(placeholder="Type a request, e.g. Write a promotional email for our new fall "
                                                "product line.", layout=ipw.Layout(width="100%", height="70px"))
        self.request.add_class("bk-play-request")
        kinds = sorted(builder.by_kind) or ["email"]
        self.kind = ipw.Dropdown(options=kinds, value="email" if "email" in kinds else kinds[0],
                                 description="Kind", tooltip="which of your own texts the prompted contender sees")
        self.kind.add_class("bk-play-kind")
        self.temperature = ipw.FloatSlider(value=self.config.temperature, min=0.0, max=1.5, step=0.05,
                                           description="temperature")
        self.top_p = ipw.FloatSlider(value=self.config.top_p, min=0.05, max=1.0, step=0.05, description="top_p")
        self.max_new_tokens = ipw.IntSlider(value=self.config.max_new_tokens, min=8, max=1024, step=8,
                                            description="max tokens")
        self.repetition_penalty = ipw.FloatSlider(value=self.config.repetition_penalty, min=1.0, max=2.0,
                                                  step=0.05, description="repetition")
        for name in ("temperature", "top_p", "max_new_tokens", "repetition_penalty"):
            getattr(self, name).add_class(f"bk-play-{name.replace('_', '-')}")
        self.go = ipw.Button(description="Generate", button_style="primary")
        self.go.add_class("bk-play-go")
        self.go.on_click(lambda _: self.generate())
        self.status = ipw.HTML()
        self.status.add_class("bk-play-status")
        self.outputs, self.keep_buttons, self.titles = {}, {}, {}
        columns = []
        for contender in contenders:
            self.titles[contender] = ipw.HTML(f"<b>{esc(SHORT_LABELS.get(contender, contender))}</b>")
            self.titles[contender].add_class(f"bk-play-title-{contender}")
            self.outputs[contender] = ipw.HTML("<div class='bk-play-out'></div>")
            self.outputs[contender].add_class(f"bk-play-out-{contender}")
            keep = ipw.Button(description="Keep", disabled=True, layout=ipw.Layout(width="auto"))
            keep.add_class(f"bk-play-keep-{contender}")
            keep.on_click(lambda _, c=contender: self.keep(c))
            self.keep_buttons[contender] = keep
            columns.append(ipw.VBox([self.titles[contender], self.outputs[contender], keep],
                                    layout=ipw.Layout(width=f"{100 // len(contenders)}%")))
        controls = ipw.VBox([ipw.HBox([self.kind, self.go]), ipw.HBox([self.temperature, self.top_p]),
                             ipw.HBox([self.max_new_tokens, self.repetition_penalty])])
        self.widget = ipw.VBox([ipw.HTML(CSS), self.request, controls, ipw.HBox(columns), self.status])
        self.widget.add_class("bk-playground")

    @classmethod
    def from_comparison(cls, comparison: dict[str, Any], run_dir: str | Path, config: CompareConfig | None = None):
        """The playground over the model compare already loaded (run.compare()'s result)."""
        return cls(comparison["model"], comparison["tokenizer"], comparison["builder"],
                   Path(run_dir) / "compare" / "playground.jsonl", config)

    def settings(self) -> CompareConfig:
        temperature = float(self.temperature.value)
        return replace(self.config, temperature=temperature, do_sample=temperature > 0, top_p=float(self.top_p.value),
                       max_new_tokens=int(self.max_new_tokens.value),
                       repetition_penalty=float(self.repetition_penalty.value), samples_per_prompt=1)

    def generate(self) -> dict[str, str]:
        """Every contender answers the request in turn, each answer drawn as it streams in."""
        request = self.request.value.strip()
        if not request:
            self.status.value = "<span class='bk-muted'>Type a request first.</span>"
            return {}
        settings = self.settings()
        self.go.disabled = True
        self.answers, self.last_request = {}, request
        for button in self.keep_buttons.values():
            button.disabled = True
        for contender in self.contenders:
            self.outputs[contender].value = "<div class='bk-play-out'></div>"
        try:
            for contender in self.contenders:
                messages = self.builder.messages(contender, [{"role": "user", "content": request}], self.kind.value)
                tokens = self.builder.length(messages)
                self.titles[contender].value = (f"<b>{esc(SHORT_LABELS.get(contender, contender))}</b> "
                                                f"<span class='bk-badge'>prompt {tokens} tokens</span>")
                self.status.value = f"<span class='bk-muted'>{esc(SHORT_LABELS.get(contender, contender))} is writing…</span>"
                text = ""
                for piece in stream(self.model, self.tokenizer, messages, ADAPTER[contender], settings,
                                    seed=settings.seed):
                    text += piece
                    self.outputs[contender].value = f"<div class='bk-play-out'>{esc(text)}</div>"
                    self.updates += 1
                self.answers[contender] = answer_text(text)
                self.outputs[contender].value = f"<div class='bk-play-out bk-done'>{esc(self.answers[contender])}</div>"
                self.keep_buttons[contender].disabled = False
            self.status.value = "<span class='bk-muted'>Done. Keep any answer worth keeping.</span>"
        finally:
            self.go.disabled = False
        return self.answers

    def keep(self, contender: str) -> dict[str, Any]:
        """Append this answer, its request and the sampling settings to playground.jsonl."""
        settings = self.settings()
        record = append_jsonl(self.path, {
            "time": now(), "request": self.last_request, "kind": self.kind.value, "contender": contender,
            "text": self.answers.get(contender, ""), "temperature": settings.temperature, "top_p": settings.top_p,
            "max_new_tokens": settings.max_new_tokens, "repetition_penalty": settings.repetition_penalty})
        self.keep_buttons[contender].disabled = True
        self.status.value = f"<span class='bk-voted'>Kept in {esc(self.path)}</span>"
        return record
