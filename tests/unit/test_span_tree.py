"""A trace's spans as the studio's tree: parents, depth, timing and readable inputs."""

from __future__ import annotations

from lapis.tracking.span_tree import MAX_TEXT, build, flatten


def _span(sid: str, parent: str | None, start: int, end: int, **attrs: str) -> dict[str, object]:
    return {
        "span_id": sid,
        "parent_span_id": parent,
        "name": sid,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "status": {"code": "STATUS_CODE_OK", "message": ""},
        "attributes": {"mlflow.spanType": '"CHAIN"', **attrs},
    }


def test_spans_nest_under_their_parents_with_times_against_the_trace() -> None:
    spans = [
        _span("add", "inner", 3_000_000, 4_000_000, **{"mlflow.spanInputs": '{"a": 1}'}),
        _span("root", None, 0, 10_000_000, **{"mlflow.spanOutputs": "8", "custom": '"x"'}),
        _span("inner", "root", 2_000_000, 6_000_000),
        _span("orphan", "gone", 1_000_000, 2_000_000),
    ]
    roots = build(spans)
    assert [r.name for r in roots] == ["root", "orphan"]
    order = [(n.name, n.depth) for n in flatten(roots)]
    assert order == [("root", 0), ("inner", 1), ("add", 2), ("orphan", 0)]
    add = flatten(roots)[2]
    assert add.start_ms == 3.0 and add.duration_ms == 1.0
    assert add.offset_pct == 30.0 and add.width_pct == 10.0
    assert add.inputs == '{\n  "a": 1\n}' and add.outputs is None
    assert add.span_type == "CHAIN" and add.status == "OK"
    assert roots[0].outputs == "8" and roots[0].attributes == {"custom": "x"}


def test_long_inputs_are_cut_with_a_note_and_nothing_breaks_on_odd_spans() -> None:
    big = '"' + "x" * (MAX_TEXT + 50) + '"'
    (node,) = build([_span("s", None, 5, 5, **{"mlflow.spanInputs": big})])
    assert node.inputs is not None and node.inputs.endswith("(50 more characters)")
    assert node.width_pct >= 0.5  # a zero-length span still shows a sliver
    assert build([]) == []
    (odd,) = build([{"name": "bare"}])
    assert odd.name == "bare" and odd.status == "UNSET"
