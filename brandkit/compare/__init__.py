"""Compare: three contenders on the same held-out requests, measured, blind-voted and edited.

- contenders: who answers and with which prompt (generic simple, generic prompted, tuned simple);
- generate:   batched and streamed generation, one model with the adapter switched off and on;
- metrics:    the brand-style score and its held-out accuracy, stylometrics;
- journal:    durable append-only JSONL; votes: blind votes and clustered intervals; edits: drafts
  edited until the rater would send them;
- stage:      the driver that writes compare/ in a run folder, and the verdict sentence.
"""

from ..models import load_tuned
from .contenders import (ADAPTER, CONTENDERS, LABELS, PAIRS, SHORT_LABELS, EvalItem, PromptBuilder, brand_guide,
                         context_budget, eval_items, training_system_prompt)
from .edits import EditStore, edit_key, edit_order, edit_summary, survival
from .generate import (Generation, adapter_switch, answer_text, generate, heldout_perplexity, load_generations,
                       perplexity_of, save_generations, stream)
from .journal import append_jsonl, read_jsonl
from .metrics import (STYLE_COLUMNS, StyleScorer, generic_texts, measure, reading_ease, rouge_l, shuffle_words,
                      split_generic, style_summary, stylometrics, term_hits, words)
from .stage import (compare_models, contender_table, contenders_frame, generation_key, prompt_builder,
                    run_generations, verdict_sentence)
from .votes import (VOTE_CHOICES, LabelLog, VoteStore, WinRate, blind_sides, bradley_terry, cluster_bootstrap,
                    cohen_kappa, pair_key, pair_results, rater_agreement, vote_results, votes_by_prompt,
                    wilson_interval, win_rate)

__all__ = [name for name in dir() if not name.startswith("_")]
