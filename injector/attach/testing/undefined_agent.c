// An agent that cannot load: it needs a function no library defines, so dlopen(RTLD_NOW)
// fails with "undefined symbol: pyrewind_test_no_such_function".
extern int pyrewind_test_no_such_function(void);

__attribute__((visibility("default"))) int pyrewind_agent_start(const char* argument) {
  (void)argument;
  return pyrewind_test_no_such_function();
}
