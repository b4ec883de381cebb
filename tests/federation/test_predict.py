"""A task that predicts labels agrees with its own evaluation."""

from __future__ import annotations

from concord.federation.tasks.base import Predictor, TaskData, load_task


def test_predictions_agree_with_the_evaluated_accuracy() -> None:
    # Prepare: a few rounds of local training on the shared split.
    task = load_task("logreg-digits")
    assert isinstance(task, Predictor)
    x, y, x_test, y_test = task.split()  # type: ignore[attr-defined]
    params = task.train(
        task.init_parameters(0), TaskData(x, y), {"epochs": 3, "learning_rate": 0.5}
    ).parameters
    # Execute
    predicted = task.predict(params, x_test)
    evaluated = task.evaluate(params, TaskData(x, y, x_test, y_test))
    # Assert
    assert predicted.shape == y_test.shape
    assert abs(float((predicted == y_test).mean()) - evaluated.metrics["accuracy"]) < 1e-12
    assert evaluated.metrics["accuracy"] > 0.8
