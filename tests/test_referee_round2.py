"""The referee's second round (issue 48), on the figures of record: what the stopping rule left of the priors,
and the temperature grid's edges, said as the numbers show them."""

import json
from pathlib import Path

import pandas as pd

from geohelpers import prose, selection
from geohelpers.config import resolve

RECORD = Path(__file__).resolve().parents[1] / "results" / "standard"


def _metrics(name: str) -> dict:
    return json.loads((RECORD / f"{name}.json").read_text())["metrics"]


def test_the_record_says_how_many_priors_the_rule_stopped_while_they_still_improved():
    m04 = _metrics("04_priors")
    rows = pd.DataFrame(m04["rows"])
    counts = selection.still_improving(rows)
    assert (counts["priors"], counts["best_at_last"], counts["gain_bits"]) == (13, 11, None)  # no gains stored then
    gains = [h["epochs"][-2]["val_loss"] - h["epochs"][-1]["val_loss"]
             for h in (m04["histories"][f"{r.codes} {r.prior}"] for r in rows.itertuples())]
    with_gain = selection.still_improving(rows.assign(last_epoch_val_gain_nats=gains))
    lo, hi = with_gain["gain_bits"]
    assert 0 < lo < hi < 2
    rule = prose.rule_text(resolve("standard").training)
    assert rule == "2 epochs without a 0.5% relative improvement"
    text = prose.still_improving_sentence(with_gain, rule).text
    assert "ended 11 of the 13 priors at an epoch that was still the best" in text
    assert f"by {lo:.2f} to {hi:.2f} bits per image" in text and "not to convergence" in text
    assert selection.still_improving(pd.DataFrame(_metrics("05_vqvae_baseline")["priors"]))["best_at_last"] == 6


def test_a_capped_prior_is_not_counted_as_stopped_by_the_rule():
    rows = pd.DataFrame({"epochs": [3, 5, 4], "best_epoch": [3, 5, 2], "stop_reason": ["patience", "max_epochs", "patience"],
                         "positions": [49, 49, 49], "last_epoch_val_gain_nats": [0.01, 0.02, -0.001]})
    counts = selection.still_improving(rows)
    assert counts["best_at_last"] == 1 and counts["gain_bits"][0] == counts["gain_bits"][1]
    assert prose.still_improving_sentence(selection.still_improving(rows.iloc[[1, 2]]), "r").text == (
        "The prior the rule (r) ended had stopped improving by then.")


def test_the_standard_temperature_grid_reaches_past_the_records_chosen_edge():
    chosen = selection.choose_temperatures(pd.DataFrame(_metrics("06_comparison")["samples_along_curves"]))
    record = selection.temperature_edges(chosen, (0.8, 0.9, 1.0))
    assert record["at_largest"] == 28 and record["generators"] == 30 and record["at_smallest"] == 0
    grid = resolve("standard").comparison.temperatures
    assert max(grid) > 1.0 and set(chosen["temperature"]) <= set(grid)  # every choice of record stays in the grid
