#!/usr/bin/env python3
"""Prepares a moto_server started with INITIAL_NO_AUTH_ACTION_COUNT=4 for walvault's S3 tests:
an IAM user with an access key and a policy allowing S3 (and IAM, so tests/s3/moto_iam.py can
make and delete further keys with it), and a bucket. After these four
unauthenticated requests moto checks the SigV4 signature of every request. Prints the key id
and the secret, one a line.

usage: moto_bootstrap.py ENDPOINT BUCKET
"""
import json
import sys

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
anonymous = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="walvault")
iam.put_user_policy(UserName="walvault", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}]}))
key = iam.create_access_key(UserName="walvault")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(key["AccessKeyId"])
print(key["SecretAccessKey"])
