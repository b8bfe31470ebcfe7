"""mlflow-users: the MLflow user the pipelines log as (Airflow tasks and Ray jobs get its credentials,
never the admin's), created once the tracking server is healthy, signed in as the admin.

Its password is set again on every run, so .env stays the one place it is decided. Runs in the
project image: `python /opt/llada/docker/mlflow-users.py`, with MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_USERNAME/PASSWORD (the admin) and MLFLOW_PIPELINE_USERNAME/PASSWORD set.
"""

import os

from mlflow.exceptions import RestException
from mlflow.server.auth.client import AuthServiceClient

client = AuthServiceClient(os.environ["MLFLOW_TRACKING_URI"])
username, password = os.environ["MLFLOW_PIPELINE_USERNAME"], os.environ["MLFLOW_PIPELINE_PASSWORD"]
try:
    client.create_user(username, password)
    print(f"mlflow-users: created {username}")
except RestException as error:
    if error.error_code != "RESOURCE_ALREADY_EXISTS":
        raise
    client.update_user_password(username, password)
    print(f"mlflow-users: {username} exists; its password is the one in .env")
