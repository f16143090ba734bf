"""A fixed, small prompt set of realistic lengths, written for this project.

Chat services see a spread of prompt lengths: short questions, a paragraph with an instruction,
and a page to summarise. Two of each (about 25, 100 and 250 tokens with SmolLM2's tokenizer) are
sent in turn, so consecutive requests never share a prompt: a server that reuses the previous
request's cached prefix (llama-cpp-python does) cannot skip a prefill the next user would pay.
The classifier's texts are short product and service reviews, one to four sentences.
"""

from __future__ import annotations

__all__ = ["CLASSIFIER_TEXTS", "COMPLETION_PROMPTS"]

_SHORT_1 = "Which is heavier, a litre of water or a litre of olive oil, and why does it matter when you cook?"
_SHORT_2 = "Give me three ideas for a quiet Sunday afternoon in a small town when it is raining outside."
_MEDIUM_1 = (
    "Our team keeps a shared calendar for the meeting rooms on the third floor. People book rooms and then do "
    "not show up, so others cannot find a free room when they need one. We have tried reminders by email, but "
    "most people ignore them. Suggest a simple rule or tool change that would free unused rooms within ten "
    "minutes of a missed start, and explain what could go wrong with it."
)
_MEDIUM_2 = (
    "I am learning to bake bread at home. My loaves rise well during the first proof, but they spread flat in "
    "the oven instead of rising upwards, and the crumb is dense near the bottom. I use a recipe with flour, "
    "water, salt and dried yeast, and bake on a metal tray at two hundred degrees. What are the likely causes, "
    "and what should I change first?"
)
_LONG_1 = (
    "Summarise the following report for a busy manager in four sentences.\n\n"
    "The city library opened its new branch by the river in March. In the first six months it lent about "
    "forty thousand items, which is more than the old branch lent in a full year. Most of the growth came "
    "from children's books and from the new collection of board games, which families borrow for the "
    "weekend. The reading room is full on weekday afternoons, mainly with students preparing for exams, and "
    "several of them asked for longer opening hours in the evening. The branch has two librarians and a "
    "rotating group of volunteers, but staff report that the evening shifts are hard to fill. The heating "
    "system failed twice during the winter, and the repairs took a week each time, which closed the "
    "upstairs rooms. The café on the ground floor is run by a local bakery and pays rent to the city; its "
    "income covers about a tenth of the branch's running costs. A survey of visitors found that they value "
    "the quiet rooms, the friendly staff and the location near the bus stop, and that they would like more "
    "power sockets, a printer that works and a place to leave bicycles. The council will decide next month "
    "whether to extend the evening hours, which would need one more member of staff."
)
_LONG_2 = (
    "Read the following notes from a product meeting and list the three decisions that were taken, then the "
    "open questions.\n\n"
    "The meeting started with a review of the mobile app's crash reports. Most crashes in the last release "
    "came from the photo upload screen on older phones, where the app runs out of memory when a picture is "
    "very large. The developers proposed to shrink pictures before upload, and the group agreed to do this "
    "in the next release. Next, the support team reported that many customers cannot find the setting that "
    "turns off marketing emails. The designers showed two layouts for the settings page; the group chose the "
    "one with a separate section for notifications. The marketing lead asked whether the change would lower "
    "the number of people who read the newsletter, and nobody knew; they will look at the numbers after a "
    "month. Then the group discussed whether to support a dark theme. Several people wanted it, but the "
    "designers said that the charts would need new colours, which takes time. The group agreed to start with "
    "the main screens only. Finally, the finance team asked when the subscription prices would change, and "
    "the product owner said that this would be decided after the summer, together with the sales team."
)
COMPLETION_PROMPTS: tuple[str, ...] = (_SHORT_1, _MEDIUM_1, _LONG_1, _SHORT_2, _MEDIUM_2, _LONG_2)

CLASSIFIER_TEXTS: tuple[str, ...] = (
    "The delivery came a day early and everything was packed with care.",
    "I waited forty minutes for a cold soup and nobody apologised.",
    ("The hotel room was clean and quiet, the bed comfortable, and the staff helped us plan a day trip to the "
     "coast. We would happily stay again."),
    ("The charger stopped working after two weeks, and the shop refused to exchange it because I had thrown "
     "away the box."),
    "Decent headphones for the price, although the left ear cushion feels a little loose.",
    ("After the update the app logs me out every few minutes. I have reinstalled it twice and written to "
     "support, but nothing has changed, and I am now looking for another service."),
)
