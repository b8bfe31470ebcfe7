#!/bin/sh
# minio-init: MLflow's artifact bucket, and a MinIO user (MLFLOW_S3_ACCESS_KEY) allowed into that bucket
# only, so that the MLflow server never holds MinIO's root credentials. Rerunning it changes nothing
# except a secret changed in .env. Runs in the minio/mc image.
set -eu
bucket=mlflow  # docker-compose.yml: mlflow's --artifacts-destination s3://mlflow

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$bucket"

policy=/tmp/mlflow-artifacts.json
cat > "$policy" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
   "Resource": ["arn:aws:s3:::$bucket"]},
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                                 "s3:ListMultipartUploadParts"],
   "Resource": ["arn:aws:s3:::$bucket/*"]}]}
JSON
mc admin policy create local mlflow-artifacts "$policy"
# `user add` on an existing user sets its secret again: .env stays the one place it is decided.
mc admin user add local "$MLFLOW_S3_ACCESS_KEY" "$MLFLOW_S3_SECRET_KEY"
# `policy attach` fails when the policy is already attached (a rerun): attach only when it is not.
case "$(mc admin user info local "$MLFLOW_S3_ACCESS_KEY")" in
  *mlflow-artifacts*) echo "minio-init: $MLFLOW_S3_ACCESS_KEY already has the mlflow-artifacts policy" ;;
  *) mc admin policy attach local mlflow-artifacts --user "$MLFLOW_S3_ACCESS_KEY" ;;
esac
