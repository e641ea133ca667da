/*
 * wagtail-tasks: keeps the page editor's "Background tasks" panel up to date.
 *
 * While the panel says work is active (data-wagtail-tasks-panel-active="true") it fetches
 * {"html": ..., "active": ...} from its status URL every interval and swaps the body in;
 * it stops when nothing is active, pauses while the browser tab is hidden, and stops for good
 * when the element leaves the page. It never touches the editor form: the panel has no
 * fields, the focused link and open <details> are kept across a swap.
 *
 * Plain JavaScript on Wagtail's own Stimulus application; no build step.
 */
(() => {
  const register = () => {
    const { Controller } = window.StimulusModule;

    class TasksPanelController extends Controller {
      static targets = ['body'];

      static values = {
        url: String,
        interval: { type: Number, default: 2000 },
      };

      connect() {
        this.timer = null;
        this.abort = null;
        this.lastHtml = null;
        this.onVisibilityChange = () => {
          if (document.hidden) this.stop();
          else this.schedule();
        };
        document.addEventListener('visibilitychange', this.onVisibilityChange);
        this.schedule();
      }

      disconnect() {
        document.removeEventListener('visibilitychange', this.onVisibilityChange);
        this.stop();
      }

      get active() {
        return this.element.getAttribute('data-wagtail-tasks-panel-active') === 'true';
      }

      schedule() {
        this.stop();
        if (!this.active || !this.urlValue || document.hidden) return;
        this.timer = window.setTimeout(() => this.refresh(), this.intervalValue);
      }

      stop() {
        if (this.timer) window.clearTimeout(this.timer);
        this.timer = null;
        if (this.abort) this.abort.abort();
        this.abort = null;
      }

      async refresh() {
        this.timer = null;
        this.abort = new AbortController();
        try {
          const response = await fetch(this.urlValue, {
            headers: { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' },
            credentials: 'same-origin',
            signal: this.abort.signal,
          });
          const isJson = (response.headers.get('Content-Type') || '').includes('json');
          if (!response.ok || response.redirected || !isJson) {
            // Signed out (sent to the login page) or no longer allowed: stop asking.
            this.element.setAttribute('data-wagtail-tasks-panel-active', 'false');
            return;
          }
          const data = await response.json();
          this.swap(data.html);
          this.element.setAttribute(
            'data-wagtail-tasks-panel-active',
            data.active ? 'true' : 'false',
          );
          this.dispatch('refreshed', { detail: { active: !!data.active } });
        } catch (error) {
          if (error.name === 'AbortError') return;
          // A network blip: try again at the next interval.
        } finally {
          this.abort = null;
        }
        this.schedule();
      }

      swap(html) {
        if (typeof html !== 'string' || html === this.lastHtml) return;
        this.lastHtml = html;
        const body = this.bodyTarget;
        // Keep what the person was doing: the focused element (by id) and open <details>.
        const focused = body.contains(document.activeElement) ? document.activeElement.id : '';
        const open = new Set(
          Array.from(body.querySelectorAll('details[open][data-wagtail-tasks-key]')).map(
            (details) => details.getAttribute('data-wagtail-tasks-key'),
          ),
        );
        body.innerHTML = html;
        open.forEach((key) => {
          const details = body.querySelector(`details[data-wagtail-tasks-key="${CSS.escape(key)}"]`);
          if (details) details.open = true;
        });
        if (focused) {
          const again = document.getElementById(focused);
          if (again && body.contains(again)) again.focus({ preventScroll: true });
        }
      }
    }

    window.wagtail.app.register('wagtail-tasks-panel', TasksPanelController);
  };

  if (window.wagtail && window.wagtail.app && window.StimulusModule) {
    register();
  } else {
    document.addEventListener('DOMContentLoaded', register, { once: true });
  }
})();
