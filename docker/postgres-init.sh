#!/bin/sh
# Run by the postgres image once, when its volume is empty (/docker-entrypoint-initdb.d), as the superuser
# `airflow`: MLflow's tracking and auth databases beside Airflow's, owned by their own role `mlflow`, so
# the MLflow server holds no Airflow password. Revoking CONNECT from PUBLIC keeps each role to its own
# databases. An existing volume is not touched: run these statements by hand there (see README).
# No `set -e`: the entrypoint sources a script that is not executable, under its own `set -e`.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set mlflow_password="$MLFLOW_DB_PASSWORD" --set airflow_db="$POSTGRES_DB" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
REVOKE CONNECT, TEMPORARY ON DATABASE mlflow, mlflow_auth, :"airflow_db" FROM PUBLIC;
SQL
