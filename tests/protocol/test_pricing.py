"""The chain's one price rule (protocol.pricing.applicable), as properties: a store campaign beats a chain
campaign beats the store's standing price beats the chain price; a campaign runs from its start
(inclusive) to its end (exclusive); overlapping campaigns of one rank give the lowest price; another
store's prices never matter; and the price chosen is always one of the candidates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.pricing import CHAIN, Applied, PriceRule, applicable

STORE, OTHER = "S001", "S002"
AT = 1_000_000

prices = st.integers(min_value=0, max_value=100_000)
ours = st.sampled_from([CHAIN, STORE])
standing = st.builds(PriceRule, store=ours, starts=st.just(0), ends=st.just(0), price=prices)


@st.composite
def campaigns(draw: st.DrawFn, store: st.SearchStrategy[str] = ours) -> PriceRule:
    starts = draw(st.integers(min_value=AT - 10, max_value=AT + 10))
    ends = draw(st.integers(min_value=starts + 1, max_value=AT + 20))
    return PriceRule(draw(store), starts, ends, draw(prices))


rules = st.lists(st.one_of(standing, campaigns()), max_size=12)


def expected(found: list[PriceRule], store: str, at: int) -> Applied | None:
    """The rule written out the long way: the first non-empty tier, its lowest price."""

    def active(r: PriceRule) -> bool:
        return r.starts <= at < r.ends

    tiers = [
        [r for r in found if r.store == store and r.ends and active(r)],
        [r for r in found if r.store == CHAIN and r.ends and active(r)],
        [r for r in found if r.store == store and not r.ends],
        [r for r in found if r.store == CHAIN and not r.ends],
    ]
    for tier in tiers:
        if tier:
            best = min(tier, key=lambda r: (r.price, r.ends))
            return Applied(best.price, best.ends)
    return None


@given(found=rules, at=st.integers(min_value=AT - 15, max_value=AT + 25))
def test_the_rule_is_the_tiers_in_order_lowest_price_within_a_tier(found: list[PriceRule], at: int) -> None:
    assert applicable(found, STORE, at) == expected(found, STORE, at)


@given(found=rules, at=st.integers(min_value=AT - 15, max_value=AT + 25))
def test_the_chosen_price_is_one_of_the_candidates_and_order_does_not_matter(found: list[PriceRule], at: int) -> None:
    chosen = applicable(found, STORE, at)
    assert applicable(list(reversed(found)), STORE, at) == chosen
    if chosen is None:
        assert not any(r.ends == 0 or r.starts <= at < r.ends for r in found)
    else:
        assert any((r.price, r.ends) == chosen for r in found)


@given(
    found=rules, others=st.lists(st.one_of(campaigns(st.just(OTHER)), standing.map(lambda r: r._replace(store=OTHER))))
)
def test_another_stores_prices_never_matter(found: list[PriceRule], others: list[PriceRule]) -> None:
    assert applicable(found + others, STORE, AT) == applicable(found, STORE, AT)
    assert applicable(others, STORE, AT) is None


@given(campaign=campaigns(), base=standing)
def test_a_campaign_starts_inclusive_and_ends_exclusive(campaign: PriceRule, base: PriceRule) -> None:
    assert applicable([campaign, base], STORE, campaign.starts - 1) == Applied(base.price, 0)
    assert applicable([campaign, base], STORE, campaign.starts) == Applied(campaign.price, campaign.ends)
    assert applicable([campaign, base], STORE, campaign.ends - 1) == Applied(campaign.price, campaign.ends)
    assert applicable([campaign, base], STORE, campaign.ends) == Applied(base.price, 0)


@given(store_price=prices, chain_price=prices)
def test_the_store_price_beats_the_chain_price_even_when_dearer(store_price: int, chain_price: int) -> None:
    found = [PriceRule(CHAIN, 0, 0, chain_price), PriceRule(STORE, 0, 0, store_price)]
    assert applicable(found, STORE, AT) == Applied(store_price, 0)
    assert applicable(found, OTHER, AT) == Applied(chain_price, 0)  # another store gets the chain's


@given(campaign_price=prices, store_price=prices)
def test_a_chain_campaign_beats_the_stores_standing_price(campaign_price: int, store_price: int) -> None:
    found = [PriceRule(STORE, 0, 0, store_price), PriceRule(CHAIN, AT, AT + 1, campaign_price)]
    assert applicable(found, STORE, AT) == Applied(campaign_price, AT + 1)
