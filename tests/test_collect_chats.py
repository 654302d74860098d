"""Collect chats: chat exports rebuilt into ordered conversations with customer and staff roles."""

from __future__ import annotations

from brandkit.collect import collect, render_turns
from brandkit.config import CollectConfig
from tests.collect_fixtures import by_source


def test_chat_rows_rebuilt_in_order_with_roles(fixture_dir):
    records = by_source(collect(fixture_dir, progress=False))
    chats = {r.locator: r for r in records["support/chats.csv"]}
    t1 = chats["conversation t1"]
    assert [t["role"] for t in t1.turns] == ["customer", "staff", "customer"]
    assert t1.turns[0]["text"] == "Where is my order?"  # re-ordered by time
    assert t1.extra["customer"] == "Alex Doe"
    assert t1.text == render_turns(t1.turns)
    nested = records["support/chats.json"][0]
    assert [t["role"] for t in nested.turns] == ["customer", "staff"]


def test_chat_column_mapping_can_be_set(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("thread,said_by,words\n1,Ann,Is the shop open on Sunday?\n1,Bo,Yes, ten till four.\n")
    default = collect(path, progress=False)
    assert not default.records and "no text column" in default.files[0].reason  # columns not recognised
    mapped = collect(path, CollectConfig(chat_columns={"conversation": "thread", "author": "said_by",
                                                       "text": "words"}), progress=False)
    chat = mapped.records[0]
    assert chat.kind == "chat" and [t["role"] for t in chat.turns] == ["customer", "staff"]
