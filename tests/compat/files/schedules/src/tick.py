import os

print("tick from", os.environ.get("AZUREML_RUN_ID", "?"))
