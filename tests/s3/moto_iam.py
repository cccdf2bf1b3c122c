#!/usr/bin/env python3
"""Access keys for credential-rotation tests, on a moto_server prepared by moto_bootstrap.py,
signed with the key in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

usage: moto_iam.py ENDPOINT new-key USER      makes USER (allowed S3) if needed and a key for it;
                                              prints the key id and the secret, one a line
       moto_iam.py ENDPOINT delete-key USER KEY_ID
"""
import json
import sys

import boto3

endpoint, verb, user = sys.argv[1], sys.argv[2], sys.argv[3]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
if verb == "new-key":
    try:
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(key["AccessKeyId"])
    print(key["SecretAccessKey"])
elif verb == "delete-key":
    iam.delete_access_key(UserName=user, AccessKeyId=sys.argv[4])
else:
    sys.exit("unknown verb " + verb)
