"""Pure grading of exercise sets: every question type, full-width and half-width alike."""

from __future__ import annotations

import json

import pytest

from edge_agent.errors import BadRequestError
from edge_agent.demo.sample_library import exercise_set
from edge_agent.spaces.exercises import attempts_allowed, grade, is_correct, load_exercise, public_questions

EX = load_exercise(exercise_set("练习", "数学", 1))  # q1 single (answer 1), q2 truefalse, q3 multiple [0,2], q4 fill 12/十二


def test_all_correct_scores_full_marks():
    r = grade(EX, {"q1": 1, "q2": True, "q3": [2, 0], "q4": "12"})
    assert r == {"score": 4.0, "total": 4.0, "results": {"q1": True, "q2": True, "q3": True, "q4": True}}


def test_missing_answers_are_wrong_not_errors():
    assert grade(EX, {"q1": 1})["score"] == 1.0


@pytest.mark.parametrize("given", ["１２", " 12 ", "十二", "１２　"])
def test_fill_in_accepts_full_width_half_width_and_every_accepted_answer(given):
    assert is_correct(EX["questions"][3], given)


def test_fill_in_case_folds_latin_and_collapses_spaces():
    q = {"id": "x", "type": "fill", "answer": ["Hello World"]}
    assert is_correct(q, "ｈｅｌｌｏ   world") and not is_correct(q, "helloworld")


def test_multiple_choice_needs_exactly_the_right_set():
    q = EX["questions"][2]
    assert is_correct(q, [0, 2]) and not is_correct(q, [0]) and not is_correct(q, [0, 1, 2])


def test_single_choice_refuses_several_options():
    q = EX["questions"][0]
    assert is_correct(q, [1]) and is_correct(q, "1") and not is_correct(q, [1, 2]) and not is_correct(q, "a")


@pytest.mark.parametrize("given,ok", [(True, True), ("对", True), ("true", True), ("错", False), (False, False), ("maybe", False)])
def test_true_false_accepts_words(given, ok):
    assert is_correct(EX["questions"][1], given) is ok


def test_public_questions_hide_the_answers():
    assert all("answer" not in q for q in public_questions(EX))


def test_unknown_question_ids_are_refused():
    with pytest.raises(BadRequestError):
        grade(EX, {"q99": 1})


def test_malformed_sets_are_refused():
    for bad in (b"{", json.dumps({"questions": []}).encode(), json.dumps({"questions": [{"id": "a", "type": "essay", "answer": 1}]}).encode()):
        with pytest.raises(BadRequestError):
            load_exercise(bad)


def test_attempts():
    assert attempts_allowed(EX) == 3 and attempts_allowed({"attempts": 0}) == 0 and attempts_allowed({}) == 1
