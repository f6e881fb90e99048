# The train -> score -> evaluate pipeline of train-score-eval.yml, written in Python the
# way azure-ai-ml's pipeline samples write it, with two changes: imports name lapis.ml
# instead of azure.ai.ml, and the client comes from a Lapis config.json. Prints a JSON
# summary on its last line. Usage: python dsl_pipeline.py CONFIG_DIR COMPONENT_NAME
import json
import sys
from pathlib import Path

from lapis.ml import Input, MLClient, command, dsl, load_component

here = Path(__file__).parent
ml_client = MLClient.from_config(credential=None, path=sys.argv[1])

# one component from its file, one registered in the workspace first
train_model = load_component(source=here.parent / "components" / "train.yml")
score = load_component(source=here / "score.yml")
score.name = sys.argv[2]  # a name of this run's own, so registering makes version 1
registered = ml_client.components.create_or_update(score)
score_model = ml_client.components.get(name=registered.name, version=registered.version)


@dsl.pipeline(description="train, score, evaluate — from Python")
def train_score_evaluate(pipeline_job_training_input, pipeline_job_epochs=20):
    train_job = train_model(
        training_data=pipeline_job_training_input,
        max_epochs=pipeline_job_epochs,
        learning_rate=0.05,
    )
    score_job = score_model(
        model_input=train_job.outputs.model_output,
        test_data=pipeline_job_training_input,
    )
    evaluate = command(
        command="python -c \"print(open('${{inputs.scores}}/scores.txt').read())\"",
        environment="system",
    )
    evaluate_job = evaluate(scores=score_job.outputs.score_output)
    evaluate_job.environment_variables = {"STEP": "evaluate"}
    return {"pipeline_job_trained_model": train_job.outputs.model_output}


pipeline_job = train_score_evaluate(
    Input(type="uri_folder", path=str(here / "data")), pipeline_job_epochs=20
)
pipeline_job.settings.default_compute = "local"
pipeline_job.settings.force_rerun = True  # the YAML twin may have run: run every step
pipeline_job.outputs.pipeline_job_trained_model.mode = "upload"

returned = ml_client.jobs.create_or_update(pipeline_job, experiment_name="pipeline-dsl")
final = ml_client.jobs.stream(returned.name)
print(json.dumps({
    "name": returned.name,
    "status": final.status,
    "steps": sorted(pipeline_job.jobs),
    "studio_url": returned.studio_url,
}))
