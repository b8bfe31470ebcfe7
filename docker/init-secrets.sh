#!/bin/sh
# init-secrets: the first service of docker-compose.yml; every other one waits for it to exit 0
# (depends_on: service_completed_successfully). It refuses while a secret from .env is missing, still its
# .env.example placeholder (change-me...) or too weak, and names each one: the stack never starts, and
# PostgreSQL and MinIO never initialise their volumes, with a password anyone who read the repository knows.
# By hand: `sh docker/init-secrets.sh` with the variables exported.

SECRETS="POSTGRES_PASSWORD MLFLOW_DB_PASSWORD
AIRFLOW_ADMIN_PASSWORD AIRFLOW__CORE__FERNET_KEY AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY
MINIO_ROOT_PASSWORD MLFLOW_S3_SECRET_KEY
MLFLOW_ADMIN_PASSWORD MLFLOW_PIPELINE_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
RAY_AUTH_TOKEN"
MIN_LENGTH=16
MINIO_MAX_LENGTH=40  # MinIO refuses a secret key longer than this

failed=0
for name in $SECRETS; do
  eval "value=\${$name-}"  # the names are the fixed list above
  problem=""
  case "$value" in
    "") problem="is not set" ;;
    change-me*) problem="still has its .env.example placeholder" ;;
    *)
      if [ "$name" = AIRFLOW__CORE__FERNET_KEY ]; then
        # Airflow encrypts connections and variables with it: 32 bytes, url-safe base64.
        printf %s "$value" | grep -Eq '^[A-Za-z0-9_-]{43}=$' || problem="is not a Fernet key (44 characters of url-safe base64)"
      elif [ ${#value} -lt $MIN_LENGTH ]; then
        problem="is shorter than $MIN_LENGTH characters"
      fi
      case "$name" in
        MINIO_ROOT_PASSWORD | MLFLOW_S3_SECRET_KEY)
          [ ${#value} -le $MINIO_MAX_LENGTH ] || problem="is longer than MinIO allows ($MINIO_MAX_LENGTH characters)" ;;
      esac ;;
  esac
  if [ -n "$problem" ]; then
    echo "init-secrets: $name $problem" >&2
    failed=1
  fi
done

if [ $failed -ne 0 ]; then
  cat >&2 <<'HELP'
init-secrets: set these in .env (a copy of .env.example), then `docker compose up` again. For example
  a password or token:  openssl rand -hex 16
  the Fernet key:       python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'
HELP
  exit 1
fi
echo "init-secrets: every secret is set"
