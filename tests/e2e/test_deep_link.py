"""A shared link to a page (e.g. /review) must open that page through the app's router, even
as the very first request a freshly started server gets."""
import pytest

from benchmarks import app_bench


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_first_request_to_a_deep_link_goes_through_the_router(browser):
    with app_bench.AppServer() as server:
        server.wait_healthy()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{server.url}/review")
            app_bench.wait_visible(page, page.locator('[data-testid="stMain"] h1').filter(has_text="Review labels"))
            sidebar = page.locator('[data-testid="stSidebar"]')
            # The router's own sidebar (title, sections, model picker), not Streamlit's legacy page list.
            app_bench.wait_visible(page, sidebar.get_by_text("Explainability Workbench"))
            assert sidebar.get_by_text("Improve", exact=True).count() == 1
            assert sidebar.get_by_role("link", name="app", exact=True).count() == 0
        finally:
            page.close()


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_the_first_page_opens_at_its_own_address_and_at_the_root(browser):
    """/explain_image is a real address (no "Page not found" on the way), and / opens it."""
    with app_bench.AppServer() as server:
        server.wait_healthy()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{server.url}/explain_image")
            app_bench.wait_visible(page, page.locator('[data-testid="stMain"] h1').filter(has_text="Explain image"))
            page.wait_for_timeout(1500)  # the dialog, when it came, came with the first rerun
            assert page.get_by_text("Page not found").count() == 0
            page.goto(server.url)
            app_bench.wait_visible(page, page.locator('[data-testid="stMain"] h1').filter(has_text="Explain image"))
            page.wait_for_url(f"{server.url}/explain_image", timeout=30_000)
            assert page.get_by_text("Page not found").count() == 0
        finally:
            page.close()
