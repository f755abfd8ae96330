"""Top-level domains that make a bare `name.tld/path` look like a link.

Data for `urls.find_urls`. Deliberately compact, not the whole IANA root zone: every
two-letter country-code TLD in the root zone, the generic TLDs people actually put in messages,
and a few internationalized ccTLDs. A scheme (`https://`) or `www.` prefix needs no entry here.
Some real TLDs are left out on purpose because they collide with file names in ordinary prose
(`.zip`, `.mov`). Punycode TLDs (`xn--…`) are accepted by the caller without a list.
"""

from __future__ import annotations

from typing import Final

# ISO 3166-1 alpha-2 based country-code TLDs delegated in the root zone, plus the exceptions
# .ac, .eu, .su and .uk.
_CC: Final = """
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo bq br bs
bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee
eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm
hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc
li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc
ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa
sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to
tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
"""

# Legacy and sponsored generic TLDs, and the new gTLDs most seen in marketing messages.
_GENERIC: Final = """
com net org info biz name pro edu gov mil int aero asia cat coop jobs mobi museum post tel
travel xxx
academy agency app art audio baby band bank bar beauty beer berlin best bet bike bio blog
boutique build business buzz cafe camp capital car care careers casa cash casino center chat
city click clinic clothing cloud club codes coffee college community company computer
consulting cool coupons courses credit dance deals delivery dental design dev diet digital
direct discount dog earth eco education email energy events expert express fail family fans
farm fashion film finance fit fitness florist food football forum fun fund furniture
game games garden gift gifts global gold golf green group guide guru hair health help holiday
homes host hotel house how icu inc institute insurance international jewelry kids kitchen land
law legal life link live loans london love ltd luxury market marketing media menu moda money
movie music network new news nyc one online page paris partners party pet photo photography
photos pics pizza place plus poker press promo properties property pub radio realty recipes red
rent report rest restaurant review reviews rocks run sale salon school science services shoes
shop shopping show site ski social software solar solutions space spa sport store studio style
supply support surf systems tax taxi team tech technology tickets tips today tokyo tools top
tours town toys training tv university vacations vet video vin vip vision vote voyage watch
website wedding wiki win wine work works world wtf xyz yoga zone
"""

# Internationalized country-code TLDs (Unicode form) in common use.
_IDN: Final = """
рф рус укр срб бел қаз мкд мон бг ею ελ 中国 中國 香港 台湾 台灣 新加坡 한국 ไทย भारत
مصر السعودية امارات ایران قطر المغرب الجزائر تونس
"""

TLDS: Final = frozenset((_CC + _GENERIC + _IDN).split())
