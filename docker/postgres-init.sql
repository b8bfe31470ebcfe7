-- MLflow's tracking database beside Airflow's metadata database, on the same PostgreSQL.
CREATE DATABASE mlflow OWNER airflow;
