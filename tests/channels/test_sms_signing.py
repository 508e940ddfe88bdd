"""Request signing against the providers' own published examples.

Aliyun: the SendSms example of the Dysms signature page (help.aliyun.com/document_detail/56189:
AccessKeyId testId, secret testSecret, expected ``zJDF+Lrzhj/ThnlvIToysFRq6t4=``) and the RPC
signature page's DescribeRegions example (document_detail/28839 family: testid/testsecret,
``OLeaidS1JvxuMvnyHOwuJ+uX5qY=``). Tencent: the CVM DescribeInstances example of the TC3 page
(cloud.tencent.com/document/api/213/30654: SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******,
timestamp 1551113065, Signature 2230eefd…652c).
"""

from __future__ import annotations

import hashlib
import json
import re

from multidict import CIMultiDict

from gongkai.channels.sms_providers import (
    aliyun_send_params,
    aliyun_signature,
    aliyun_string_to_sign,
    percent_encode,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
    tencent_send_request,
)
from gongkai.sandbox import aliyun_sms, tencent_sms

DYSMS_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
DYSMS_DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF"
    "%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF"
    "%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
    "%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)

TC3_DOC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)


def test_aliyun_signature_matches_the_dysms_documented_example() -> None:
    assert aliyun_string_to_sign("GET", DYSMS_DOC_PARAMS) == DYSMS_DOC_STRING_TO_SIGN
    assert aliyun_signature("GET", DYSMS_DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_signature_matches_the_rpc_documented_example() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_signature_ignores_a_signature_already_in_the_params() -> None:
    with_old = dict(DYSMS_DOC_PARAMS, Signature="stale")
    assert aliyun_signature("GET", with_old, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_percent_encoding_follows_the_pop_rules() -> None:
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("*") == "%2A"
    assert percent_encode("-_.~") == "-_.~"
    assert percent_encode("/=&+:") == "%2F%3D%26%2B%3A"
    assert percent_encode("公开") == "%E5%85%AC%E5%BC%80"


def test_tc3_signature_matches_the_documented_cvm_example() -> None:
    assert hashlib.sha256(TC3_DOC_PAYLOAD).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    canonical = tc3_canonical_request(
        "POST",
        "/",
        "",
        {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"},
        ["content-type", "host"],
        TC3_DOC_PAYLOAD,
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
        "\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    to_sign = tc3_string_to_sign(1551113065, "cvm", canonical)
    assert to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    secret_key = "Gu5t9xGARNpq86cd98joQYCN3*******"
    assert tc3_signature(secret_key, 1551113065, "cvm", to_sign) == (
        "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )
    assert tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
        secret_key,
        service="cvm",
        timestamp=1551113065,
        host="cvm.tencentcloudapi.com",
        payload=TC3_DOC_PAYLOAD,
    ) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


PART = {
    "provider": "aliyun",
    "phones": ["13800000000", "13900000001"],
    "template_code": "SMS_000001",
    "params": {"title": "低保标准调整 & 发放", "link": "http://127.0.0.1/p/x"},
    "sign_name": "伊金霍洛旗政务公开",
}


def test_aliyun_request_verifies_with_the_fakes_independent_signer() -> None:
    account = {"access_key_id": "testid", "access_key_secret": "testsecret"}
    params = aliyun_send_params(account, PART, out_id="7-0", timestamp=1_700_000_000, nonce="n1")
    assert params["Timestamp"] == "2023-11-14T22:13:20Z"
    assert params["PhoneNumbers"] == "13800000000,13900000001"
    assert json.loads(params["TemplateParam"]) == PART["params"]
    assert params["Signature"] == aliyun_sms.expected_signature("POST", params, "testsecret")
    assert params["Signature"] != aliyun_sms.expected_signature("POST", params, "other")


def test_tencent_request_verifies_with_the_fakes_independent_signer() -> None:
    account = {"secret_id": "AKIDx", "secret_key": "k", "sdk_app_id": "1400000001"}
    part = dict(PART, provider="tencent", phones=["+8613800000000"], params=["a", "b"])
    headers, body = tencent_send_request(
        account,
        part,
        session_context="7-0",
        host="sms.tencentcloudapi.com",
        timestamp=1_700_000_000,
    )
    assert json.loads(body)["PhoneNumberSet"] == ["+8613800000000"]
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert headers["X-TC-Region"] == "ap-guangzhou"
    m = re.search(
        r"Credential=AKIDx/2023-11-14/sms/tc3_request, .*Signature=([0-9a-f]{64})$",
        headers["Authorization"],
    )
    assert m is not None
    arrived = CIMultiDict(headers)
    signed = ["content-type", "host"]
    expected = tencent_sms.expected_signature("k", arrived, signed, body, 1_700_000_000, "sms")
    assert m.group(1) == expected
    tampered = body.replace(b"13800000000", b"13800000001")
    assert tencent_sms.expected_signature("k", arrived, signed, tampered, 1_700_000_000, "sms") != (
        expected
    )
