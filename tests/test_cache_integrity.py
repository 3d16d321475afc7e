"""The judgment cache does not believe a row it did not write as it is: a tampered, damaged or
checksum-less row is a miss, the judge is asked again and the row rewritten."""

import json
import logging
import math
import sqlite3

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.cache import JudgmentCache, row_checksum
from judgerl.judges.pointwise import RubricJudge

ln = math.log


def low_scores(messages):
    return [("1", ln(0.9)), ("2", ln(0.1))]


def judged_once(tmp_path):
    """A real judgment written through the cache: (database path, its key, the first judgment, provider)."""
    path = tmp_path / "judgments.sqlite"
    provider = ScriptedProvider(low_scores)
    cache = JudgmentCache(path)
    [first] = RubricJudge(provider, "Be right.", cache=cache).score(["q"], ["a"])
    cache.close()
    assert first.scored and first.reward < 0.2 and provider.calls == 1
    with sqlite3.connect(path) as db:
        [(key,)] = db.execute("SELECT key FROM judge_calls").fetchall()
    return path, key, first, provider


def rewrite_response(path, key, change):
    with sqlite3.connect(path) as db:
        [(stored,)] = db.execute("SELECT response FROM judge_calls WHERE key = ?", (key,)).fetchall()
        db.execute("UPDATE judge_calls SET response = ? WHERE key = ?", (change(stored), key))


def test_an_untampered_row_is_a_hit(tmp_path):
    path, key, first, provider = judged_once(tmp_path)
    cache = JudgmentCache(path)
    assert isinstance(cache.get(key), dict) and cache.hits == 1 and cache.tampered == 0
    [again] = RubricJudge(provider, "Be right.", cache=cache).score(["q"], ["a"])
    assert again.cached and again.reward == pytest.approx(first.reward) and provider.calls == 1


def test_a_row_edited_to_give_the_top_reward_is_a_miss_and_is_judged_again(tmp_path, caplog):
    path, key, first, provider = judged_once(tmp_path)

    def top_score(stored):
        response = json.loads(stored)
        response["top_logprobs"] = [["5", 0.0]]  # P(5) = 1: a reward of 1.0 if believed
        response["text"] = "5"
        return json.dumps(response)

    rewrite_response(path, key, top_score)
    cache = JudgmentCache(path)
    with caplog.at_level(logging.WARNING, logger="judgerl.judges.cache"):
        assert cache.get(key) is None
    assert cache.tampered == 1 and cache.unverified == 0 and cache.hits == 0
    assert "checksum does not match" in caplog.text
    [again] = RubricJudge(provider, "Be right.", cache=cache).score(["q"], ["a"])
    assert provider.calls == 2 and not again.cached  # asked again, not rewarded 1.0
    assert again.reward == pytest.approx(first.reward) and again.reward < 0.2
    assert cache.tampered == 2  # our get, then the judge's own look-up
    assert cache.get(key) is not None and cache.tampered == 2  # rewritten with a checksum: believed again


@pytest.mark.parametrize("garbage", ['{"top_logprobs": [["1", -0.1', "", "not json", "[1, 2, 3]", '"5"', "null"])
def test_truncated_or_garbage_json_is_a_miss(tmp_path, garbage):
    path, key, _, _ = judged_once(tmp_path)
    rewrite_response(path, key, lambda stored: garbage)
    cache = JudgmentCache(path)
    assert cache.get(key) is None and cache.tampered == 1


def test_garbage_with_a_recomputed_checksum_is_still_not_a_dict(tmp_path):
    path, key, _, _ = judged_once(tmp_path)
    with sqlite3.connect(path) as db:
        for garbage in ("[1, 2, 3]", "{broken"):
            db.execute("UPDATE judge_calls SET response = ?, checksum = ? WHERE key = ?",
                       (garbage, row_checksum(key, garbage), key))
            db.commit()
            cache = JudgmentCache(path)
            assert cache.get(key) is None and cache.tampered == 1


def test_a_row_moved_under_another_key_is_a_miss(tmp_path):
    path, key, _, _ = judged_once(tmp_path)
    other = "0" * 64
    with sqlite3.connect(path) as db:  # a valid row copied, checksum and all, under another key
        db.execute("INSERT INTO judge_calls (key, judge_id, key_parts, response, created, checksum)"
                   " SELECT ?, judge_id, key_parts, response, created, checksum FROM judge_calls WHERE key = ?",
                   (other, key))
    cache = JudgmentCache(path)
    assert cache.get(other) is None and cache.tampered == 1
    assert cache.get(key) is not None


def test_a_cache_file_from_before_the_checksum_still_opens_and_its_rows_are_rejudged(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema judgerl wrote before the checksum column
        db.execute("CREATE TABLE judge_calls (key TEXT PRIMARY KEY, judge_id TEXT NOT NULL, key_parts TEXT NOT NULL,"
                   " response TEXT NOT NULL, created REAL NOT NULL)")
    provider = ScriptedProvider(low_scores)
    cache = JudgmentCache(path)
    RubricJudge(provider, "Be right.", cache=cache).score(["q"], ["a"])
    key = cache._conn.execute("SELECT key FROM judge_calls").fetchone()[0]
    cache._conn.execute("UPDATE judge_calls SET checksum = NULL")  # as an older judgerl left it
    cache._conn.commit()
    cache.close()
    reopened = JudgmentCache(path)
    assert reopened.get(key) is None and reopened.tampered == 1 and reopened.unverified == 1
    [again] = RubricJudge(provider, "Be right.", cache=reopened).score(["q"], ["a"])
    assert provider.calls == 2 and not again.cached
    assert reopened.get(key) is not None  # rewritten with a checksum
    JudgmentCache(path).close()  # opening it again does not add the column twice
