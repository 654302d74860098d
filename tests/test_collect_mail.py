"""Collect mail: .eml and .mbox messages, their MIME parts, charsets and headers."""

from __future__ import annotations

from brandkit.collect import collect
from tests.collect_fixtures import build_email, by_source, mbox


def test_email_mime_walking(fixture_dir):
    result = collect(fixture_dir, progress=False)
    records = by_source(result)
    one = records["mail/one.eml"][0]
    assert one.kind == "email" and one.title == "Café news" and "opens on Monday" in one.text
    assert one.date.startswith("2025-03-04")
    box = {r.title: r for r in records["mail/Sent.mbox"]}
    assert set(box) == {"Plain QP", "Base64 body", "Latin-1", "Both parts", "HTML only"}
    assert "From here on" in box["Plain QP"].text  # mbox ">From " escaping undone
    assert box["Base64 body"].text.strip() == "A message sent as base64."
    assert "Crème brûlée" in box["Latin-1"].text
    assert box["Both parts"].text.strip() == "The plain version."  # plain part preferred
    assert "Our spring sale starts Monday." in box["HTML only"].text and "<b>" not in box["HTML only"].text
    mbox_report = next(f for f in result.files if f.path == "mail/Sent.mbox")
    assert mbox_report.notes["attachments ignored"] == 1
    assert [r.locator for r in records["mail/Sent.mbox"]] == [f"message {n}" for n in range(1, 6)]


def received_mailbox() -> bytes:
    """A Takeout-style "All mail": the brand's sent messages, customers' messages, a spam one."""
    from email.message import EmailMessage

    def message(sender: str, subject: str, labels: str = "") -> bytes:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, "someone@example.com", subject
        if labels:
            msg["X-Gmail-Labels"] = labels
        msg.set_content(f"{subject}: a message long enough to be a real one, with a few words in it.")
        return msg.as_bytes()

    return mbox(message("Mara at Ember <hello@emberstreet.example.com>", "sent by address"),
                message("Tom Ellery <tom@customer.example.net>", "a customer asks", "Inbox,Important"),
                message("Suki <suki@emberstreet.example.com>", "sent from the domain"),
                message("Mara <mara.personal@mail.example.org>", "sent from a phone", "Sent"),
                message("Priya <priya@customer.example.net>", "a second customer"),
                message("Spammer <win@spam.example>", "spam", "Spam"))


def test_received_mail_is_set_aside_with_its_reason(tmp_path):
    from brandkit.config import BrandKit, CollectConfig

    (tmp_path / "Takeout").mkdir()
    (tmp_path / "Takeout" / "All mail.mbox").write_bytes(received_mailbox())
    (tmp_path / "reply.eml").write_bytes(build_email("Re: beans", "A reply from a customer to us.",
                                                     sender="tom@customer.example.net"))
    brand = BrandKit(name="Ember", slug="e", sends_from=["hello@emberstreet.example.com", "@emberstreet.example.com"])
    result = collect(tmp_path, progress=False, brand=brand)
    assert [r.title for r in result.records] == ["sent by address", "sent from the domain", "sent from a phone"]
    box = next(f for f in result.files if f.path == "Takeout/All mail.mbox")
    assert box.notes["received messages skipped (not sent by the brand)"] == 2
    assert box.notes["spam or trash messages skipped"] == 1
    assert [i["locator"] for i in box.skipped_items] == ["message 2", "message 5"]
    assert all(i["reason"].startswith("received mail: From customer.example.net is not one of the brand's")
               for i in box.skipped_items)
    reply = next(f for f in result.files if f.path == "reply.eml")
    assert reply.status == "skipped" and "received mail" in reply.reason
    assert result.set_aside == 3 and "3 received messages set aside" in result.summary()
    everything = collect(tmp_path, CollectConfig(mail_messages="all"), progress=False, brand=brand)
    assert len(everything.records) == 6 and everything.set_aside == 0
    # without a brand kit only Gmail's labels can tell: labelled messages without Sent are received
    unlabelled = collect(tmp_path, progress=False)
    assert sorted(r.title for r in unlabelled.records) == ["Re: beans", "a second customer", "sent by address",
                                                          "sent from a phone", "sent from the domain"]
    assert unlabelled.set_aside == 1


def test_a_mailbox_is_read_as_a_stream_in_blocks(tmp_path, monkeypatch):
    from brandkit.collect import mail
    from brandkit.config import CollectConfig

    messages = [build_email(f"Message {n}", f"From the roastery, message number {n}.\n" * 200) for n in range(40)]
    (tmp_path / "big.mbox").write_bytes(mbox(*messages))
    reads = []
    original = mail.mbox_messages

    def spy(handle, start=b""):
        read = handle.read
        handle.read = lambda size=-1: reads.append(size) or read(size)
        return original(handle, start)

    monkeypatch.setattr(mail, "BLOCK", 4096)
    monkeypatch.setattr(mail, "mbox_messages", spy)
    # far past max_file_mb: a mailbox is streamed, never read whole, so the size limit does not apply
    result = collect(tmp_path, CollectConfig(max_file_mb=0.01, records_in_memory_mb=0.05), progress=False)
    assert [r.title for r in result.records] == [f"Message {n}" for n in range(40)]
    assert reads and all(0 < size <= 4096 for size in reads)  # never read(-1)
    assert result.records.spilled  # past records_in_memory_mb the records wait on disk
    dataset = result.to_dataset()
    assert dataset["title"] == [f"Message {n}" for n in range(40)] and "message number 39" in dataset["text"][-1]
    paths = result.save(tmp_path / "out")
    assert len(paths["records_jsonl"].read_text().splitlines()) == 40
