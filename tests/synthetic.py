"""Deterministic synthetic people: Chinese names, valid resident ID and phone numbers.

Used by the tests, the benchmarks and to make `data/demo/users.csv`. Nothing
here is a real person: names are drawn from common characters; ID numbers are
unique per index, with birth dates spread over ages 6 to 80 and a correct check
digit; phones are valid mobile ranges.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国文博宇轩浩然子涵欣怡雨萱梓"
PLACES = ["110105", "310104", "110101", "120101", "110102", "310101"]  # codes valid for births since 1940
STREETS = ["建国路", "人民路", "解放路", "中山路", "长安街", "和平路", "文化路", "南京路"]
CITIES = ["北京市朝阳区", "上海市徐汇区", "广州市天河区", "成都市武侯区", "杭州市西湖区", "武汉市洪山区"]
MOBILE_PREFIXES = ["138", "139", "150", "151", "186", "187", "135", "136", "158", "188"]
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_digit(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS))
    return "10X98765432"[total % 11]


DAYS = 74 * 365  # ages 6 to 80
SPACE = len(PLACES) * 500 * DAYS


def resident_id_for(index: int, male: bool, today: date) -> tuple[str, date]:
    """A resident ID number unique to `index`: (place, birth date, serial) is a bijection of it."""
    code = (index * 7919 + 12345) % SPACE
    place, rest = PLACES[code % len(PLACES)], code // len(PLACES)
    serial, day = (rest % 500) * 2 + (1 if male else 0), rest // 500
    born = today - timedelta(days=6 * 365 + day)
    first17 = f"{place}{born:%Y%m%d}{serial:03d}"
    return first17 + check_digit(first17), born


def person(index: int, rng: random.Random, today: date = date(2026, 11, 30)) -> dict:
    male = rng.random() < 0.5
    number, born = resident_id_for(index, male, today)
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
    return {
        "user_id": f"U{index:08d}",
        "name": name,
        "gender": "male" if male else "female",
        "birth_date": born.isoformat(),
        "address": f"{rng.choice(CITIES)}{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
        "phone": f"{rng.choice(MOBILE_PREFIXES)}{index % 100_000_000:08d}",
        "email": f"user{index}@example.com",
        "id_number": number,
        "contact": "",
    }


def people(count: int, seed: int = 7, start: int = 1, **options):
    rng = random.Random(seed)
    for index in range(start, start + count):
        yield person(index, rng, **options)
